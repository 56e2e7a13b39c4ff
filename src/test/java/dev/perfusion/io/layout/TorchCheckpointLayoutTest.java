package dev.perfusion.io.layout;

import dev.perfusion.Fixtures;
import dev.perfusion.io.Safetensors;
import dev.perfusion.io.StateDict;
import dev.perfusion.io.pickle.TorchSaveWriter;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.*;

/**
 * PyTorch checkpoints through the same layout recognition as safetensors: the reference's .ckpt files (zip fp16,
 * legacy fp32, full EMA) and diffusers folder with .bin weights, and files written here in the variants real
 * checkpoints come in, against the fixture's diffusers folder.
 */
class TorchCheckpointLayoutTest {
    @TempDir Path tmp;

    private static Path pickles() {
        return Fixtures.sdTiny().resolve("pickle");
    }

    private static ModelSource.Options withConfig() {
        return ModelSource.Options.defaults().withConfig(Fixtures.diffusers());
    }

    private static List<StateDict> components(ResolvedModel m) {
        return List.of(m.unetWeights(), m.vaeWeights(), m.textEncoderWeights());
    }

    /** Every tensor of each component of {@code actual} equals the reference's (the diffusers folder), bit for bit. */
    private static void assertSameWeights(ResolvedModel reference, ResolvedModel actual, String what) {
        for (int c = 0; c < 3; c++) {
            StateDict expected = components(reference).get(c), got = components(actual).get(c);
            assertEquals(new TreeSet<>(expected.keys()), new TreeSet<>(got.keys()), what + " component " + c);
            for (String name : expected.keys()) {
                assertArrayEquals(expected.shape(name), got.shape(name), what + " " + name);
                try (Scope s = Scope.inference()) {
                    assertArrayEquals(Ops.toFloats(expected.get(name)), Ops.toFloats(got.get(name)), what + " " + name);
                }
            }
        }
    }

    @Test
    void zipAndLegacyCkptsLoadAsTheirDiffusersFolder() throws IOException {
        ResolvedModel folder = ModelSource.resolve(Fixtures.diffusers());
        for (String name : List.of("sd-tiny-zip-fp16.ckpt", "sd-tiny-legacy-fp32.ckpt")) {
            ResolvedModel ckpt = ModelSource.resolve(pickles().resolve(name), withConfig());
            assertEquals(CheckpointLayout.SINGLE_FILE, ckpt.layout(), name);
            assertEquals(List.of(), ckpt.notes(), name);
            assertEquals(name.contains("zip") ? "F16" : "F32", ckpt.unetWeights().dtype("conv_in.weight"), name);
            assertSameWeights(folder, ckpt, name);
            assertEquals(WeightHash.sampled(folder.unetWeights()), WeightHash.sampled(ckpt.unetWeights()), name);
        }
    }

    @Test
    void theEmaCkptLoadsItsEmaUNetAndSaysSo() throws IOException {
        ResolvedModel folder = ModelSource.resolve(Fixtures.diffusers());
        Path file = pickles().resolve("sd-tiny-ema-zip-fp16.ckpt");
        ResolvedModel ema = ModelSource.resolve(file, withConfig());
        assertEquals(1, ema.notes().size());
        assertTrue(ema.notes().get(0).startsWith("sd-tiny-ema-zip-fp16.ckpt: the EMA UNet weights (model_ema.*, "), ema.notes().get(0));
        assertSameWeights(folder, ema, "EMA");
        String described = ema.unetWeights().describe("conv_in.weight");
        assertTrue(described.contains("model_ema.diffusion_modelinput_blocks00weight"), described);

        ResolvedModel plain = ModelSource.resolve(file, withConfig().withNonEma());
        assertTrue(plain.notes().get(0).contains("the non-EMA UNet weights were used, as asked"), plain.notes().get(0));
        try (Scope s = Scope.inference()) {
            Tensor perturbed = plain.unetWeights().get("conv_in.weight"), truth = folder.unetWeights().get("conv_in.weight");
            assertTrue(Ops.maxAbsDiff(perturbed, truth) > 0.1, "the non-EMA UNet is the perturbed one");
            assertArrayEquals(Ops.toFloats(folder.vaeWeights().get("decoder.conv_in.weight")),
                    Ops.toFloats(plain.vaeWeights().get("decoder.conv_in.weight")), "VAE as stored");
        }
    }

    @Test
    void aDiffusersFolderWithBinWeights() throws IOException {
        ResolvedModel bin = ModelSource.resolve(pickles().resolve("diffusers-bin"));
        assertEquals(CheckpointLayout.DIFFUSERS_FOLDER, bin.layout());
        assertEquals("PyTorch zip checkpoint", WeightFile.describe(bin.unetWeights()));
        assertSameWeights(ModelSource.resolve(Fixtures.diffusers()), bin, "diffusers-bin");
    }

    /** transformers' sharded .bin weights: pytorch_model.bin.index.json naming pytorch_model-0000N-of-00002.bin. */
    @Test
    void aDiffusersFolderWithShardedBinWeights() throws IOException {
        Path bin = pickles().resolve("diffusers-bin"), dir = tmp.resolve("sharded-bin");
        try (var files = java.nio.file.Files.walk(bin)) {
            for (Path f : files.filter(java.nio.file.Files::isRegularFile).toList()) {
                if (f.endsWith(Path.of("text_encoder", "pytorch_model.bin"))) continue;
                Path to = dir.resolve(bin.relativize(f).toString());
                java.nio.file.Files.createDirectories(to.getParent());
                java.nio.file.Files.copy(f, to);
            }
        }
        Safetensors text = Safetensors.open(Fixtures.diffusers().resolve("text_encoder/model.safetensors"));
        StringBuilder index = new StringBuilder("{\"metadata\": {}, \"weight_map\": {");
        try (Scope s = Scope.inference()) {
            Map<String, Tensor> first = new LinkedHashMap<>(), second = new LinkedHashMap<>();
            for (String k : new TreeSet<>(text.keys())) {
                boolean one = k.contains("layers.0.") || k.contains("embeddings");
                (one ? first : second).put(k, text.get(k));
                if (index.charAt(index.length() - 1) != '{') index.append(", ");
                index.append('"').append(k).append("\": \"pytorch_model-0000").append(one ? 1 : 2).append("-of-00002.bin\"");
            }
            TorchSaveWriter.zip(dir.resolve("text_encoder/pytorch_model-00001-of-00002.bin"), first, TorchSaveWriter.Layout.PLAIN);
            TorchSaveWriter.legacy(dir.resolve("text_encoder/pytorch_model-00002-of-00002.bin"), second, TorchSaveWriter.Layout.PLAIN);
        }
        java.nio.file.Files.writeString(dir.resolve("text_encoder/pytorch_model.bin.index.json"), index.append("}}").toString());
        ResolvedModel m = ModelSource.resolve(dir);
        assertEquals(CheckpointLayout.DIFFUSERS_FOLDER, m.layout());
        assertTrue(m.textEncoderWeights().describe("text_model.final_layer_norm.weight").contains("pytorch_model-00002-of-00002.bin"));
        assertSameWeights(ModelSource.resolve(Fixtures.diffusers()), m, "sharded .bin");
    }

    /** Real checkpoints' other shapes: a top-level dict of LDM tensors without state_dict, in both formats. */
    @Test
    void aPlainDictOfLdmTensorsInBothFormats() throws IOException {
        ResolvedModel folder = ModelSource.resolve(Fixtures.diffusers());
        Safetensors single = Safetensors.open(Fixtures.singleFile());
        try (Scope s = Scope.inference()) {
            Map<String, Tensor> all = new LinkedHashMap<>();
            for (String k : single.keys()) all.put(k, single.read(k, org.bytedeco.pytorch.global.torch.ScalarType.Half));
            Path zip = tmp.resolve("plain.pt"), legacy = tmp.resolve("plain-legacy.pth");
            TorchSaveWriter.zip(zip, all, TorchSaveWriter.Layout.PLAIN);
            TorchSaveWriter.legacy(legacy, all, TorchSaveWriter.Layout.PLAIN);
            for (Path file : List.of(zip, legacy)) assertSameWeights(folder, ModelSource.resolve(file, withConfig()), file.toString());
        }
    }

    @Test
    void partialEmaCopiesAreNotUsedAndThatIsSaid() throws IOException {
        Safetensors single = Safetensors.open(Fixtures.singleFile());
        try (Scope s = Scope.inference()) {
            Map<String, Tensor> all = new LinkedHashMap<>();
            for (String k : single.keys()) all.put(k, single.get(k));
            all.put("model_ema.diffusion_modelinput_blocks00weight", Ops.zeros(single.shape("model.diffusion_model.input_blocks.0.0.weight")));
            all.put("model_ema.decay", Ops.scalar(0.9999));
            Path file = tmp.resolve("partial-ema.ckpt");
            TorchSaveWriter.zip(file, all, TorchSaveWriter.Layout.lightning(5));
            ResolvedModel m = ModelSource.resolve(file, withConfig());
            assertTrue(m.notes().get(0).matches("partial-ema.ckpt: the non-EMA UNet weights were used: model_ema.\\* holds copies of only 1 of its \\d+ UNet weights"),
                    m.notes().get(0));
            assertArrayEquals(Ops.toFloats(single.get("model.diffusion_model.input_blocks.0.0.weight")), Ops.toFloats(m.unetWeights().get("conv_in.weight")));
        }
    }
}
