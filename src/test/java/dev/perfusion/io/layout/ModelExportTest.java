package dev.perfusion.io.layout;

import dev.perfusion.Fixtures;
import dev.perfusion.io.Safetensors;
import dev.perfusion.io.StateDict;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.util.Progress;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/** Converting models: every source layout to a single file and to a diffusers folder, read back equal. */
class ModelExportTest {
    @TempDir Path tmp;

    private static ModelSource.Options withConfig() {
        return ModelSource.Options.defaults().withConfig(Fixtures.diffusers());
    }

    private static void assertSameWeights(ResolvedModel expected, ResolvedModel actual, String what) {
        List<StateDict> e = List.of(expected.unetWeights(), expected.vaeWeights(), expected.textEncoderWeights());
        List<StateDict> a = List.of(actual.unetWeights(), actual.vaeWeights(), actual.textEncoderWeights());
        for (int c = 0; c < 3; c++) {
            assertEquals(new TreeSet<>(e.get(c).keys()), new TreeSet<>(a.get(c).keys()), what);
            for (String name : e.get(c).keys()) {
                try (Scope s = Scope.inference()) {
                    assertArrayEquals(Ops.toFloats(e.get(c).get(name)), Ops.toFloats(a.get(c).get(name)), what + " " + name);
                }
            }
        }
    }

    @Test
    void aDiffusersFolderBecomesTheReferencesSingleFileWithoutItsScheduleBuffers() throws IOException {
        Path out = tmp.resolve("tiny.safetensors");
        ModelExport.Written w = ModelExport.singleFile(ModelSource.resolve(Fixtures.diffusers()), out, Safetensors.StoredType.F16, Progress.NONE);
        assertEquals(600, w.tensors());
        Safetensors written = Safetensors.open(out), reference = Safetensors.open(Fixtures.singleFile());
        TreeSet<String> expected = new TreeSet<>(reference.keys());
        // LDM's noise-schedule buffers are computed from the scheduler config, not written
        expected.removeIf(k -> !k.contains("."));
        assertEquals(612 - 12, expected.size());
        assertEquals(expected, new TreeSet<>(written.keys()));
        for (String k : expected) {
            assertArrayEquals(reference.shape(k), written.shape(k), k);
            try (Scope s = Scope.inference()) {
                assertArrayEquals(Ops.toFloats(reference.get(k)), Ops.toFloats(written.get(k)), k);
            }
        }
        assertEquals("custom", written.metadata().get("family"));
        assertSameWeights(ModelSource.resolve(Fixtures.diffusers()), ModelSource.resolve(out, withConfig()), "read back");
    }

    @Test
    void theEmaCkptBecomesADiffusersFolderWithItsEmaWeights() throws IOException {
        Path ckpt = Fixtures.sdTiny().resolve("pickle/sd-tiny-ema-zip-fp16.ckpt");
        Path out = tmp.resolve("models/tiny");
        ModelExport.Written w = ModelExport.diffusersFolder(ModelSource.resolve(ckpt, withConfig()), out, Safetensors.StoredType.F32, Progress.NONE);
        assertEquals(600, w.tensors());
        ResolvedModel back = ModelSource.resolve(out);
        assertEquals(CheckpointLayout.DIFFUSERS_FOLDER, back.layout());
        assertEquals("F32", back.unetWeights().dtype("conv_in.weight"));
        assertTrue(back.tokenizerDir().isPresent(), "the tokenizer of the config folder is copied");
        assertSameWeights(ModelSource.resolve(Fixtures.diffusers()), back, "EMA ckpt -> folder");
        assertTrue(Safetensors.open(out.resolve("unet/diffusion_pytorch_model.safetensors")).metadata().get("weights").contains("EMA"));
        try (Stream<Path> left = Files.list(out.getParent())) {
            assertEquals(List.of(out), left.toList(), "nothing but the folder is left beside it");
        }
        ResolvedModel source = ModelSource.resolve(ckpt, withConfig());
        IOException again = assertThrows(IOException.class, () -> ModelExport.diffusersFolder(source, out, Safetensors.StoredType.F16, Progress.NONE));
        assertTrue(again.getMessage().startsWith(out + " exists"), again.getMessage());
    }

    @Test
    void fp16OverflowIsRefusedAndLeavesNothing() throws IOException {
        Safetensors single = Safetensors.open(Fixtures.singleFile());
        Path big = tmp.resolve("big.safetensors");
        String hot = "model.diffusion_model.out.2.bias";
        try (Scope s = Scope.inference()) {
            Map<String, Tensor> all = new LinkedHashMap<>();
            for (String k : single.keys()) all.put(k, k.equals(hot) ? Ops.mul(single.get(k).add(new org.bytedeco.pytorch.Scalar(1)), 1e6) : single.get(k));
            Safetensors.write(big, all, Map.of(), Safetensors.StoredType.F32);
        }
        ResolvedModel m = ModelSource.resolve(big, withConfig());
        Path out = tmp.resolve("out/fp16");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ModelExport.diffusersFolder(m, out, Safetensors.StoredType.F16, Progress.NONE));
        assertTrue(e.getMessage().startsWith(big + " tensor '" + hot + "'") && e.getMessage().contains("convert to fp32 instead"), e.getMessage());
        try (Stream<Path> left = Files.list(out.getParent())) {
            assertEquals(List.of(), left.toList(), "no partial folder is left");
        }
        assertThrows(IllegalArgumentException.class, () -> ModelExport.singleFile(m, tmp.resolve("x.safetensors"), Safetensors.StoredType.F16, Progress.NONE));
        assertFalse(Files.exists(tmp.resolve("x.safetensors")));
        ModelExport.singleFile(m, tmp.resolve("x.safetensors"), Safetensors.StoredType.F32, Progress.NONE);
        IOException self = assertThrows(IOException.class, () -> ModelExport.singleFile(m, big, Safetensors.StoredType.F32, Progress.NONE));
        assertTrue(self.getMessage().contains("is the model being converted"), self.getMessage());
    }

    @Test
    void theOriginalNamesRunTheRenameTablesBackwards() throws IOException {
        ResolvedModel single = ModelSource.resolve(Fixtures.singleFile(), withConfig());
        BlockTable unet = LdmUnet.blocks(single.unetConfig()), vae = LdmVae.blocks(single.vaeConfig());
        int checked = 0;
        for (var e : ((RenamedStateDict) single.unetWeights()).table().entrySet()) {
            assertEquals(e.getValue().key(), LdmUnet.PREFIX + unet.ldmName(e.getKey()).name(), e.getKey());
            checked++;
        }
        for (var e : ((RenamedStateDict) single.vaeWeights()).table().entrySet()) {
            assertEquals(e.getValue().key(), LdmVae.PREFIX + vae.ldmName(e.getKey()).name(), e.getKey());
            checked++;
        }
        assertEquals(548, checked);
        assertNull(unet.ldmName("no_such_block.weight"));
    }
}
