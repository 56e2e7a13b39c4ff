package dev.perfusion.io.layout;

import dev.perfusion.Fixtures;
import dev.perfusion.io.Safetensors;
import dev.perfusion.io.StateDict;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.util.Progress;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.*;

/** Which weights of a diffusers folder are read, and under which names. */
class DiffusersFolderTest {
    @TempDir Path tmp;

    private Path copyOfFixture() throws IOException {
        Path source = Fixtures.diffusers(), target = tmp.resolve("model");
        try (var files = Files.walk(source)) {
            for (Path p : files.toList()) {
                Path to = target.resolve(source.relativize(p).toString());
                if (Files.isDirectory(p)) Files.createDirectories(to);
                else Files.copy(p, to);
            }
        }
        return target;
    }

    /**
     * VAEs saved before diffusers 0.14 (the SD 1.x/2.x hub folders) name their mid-block attention query/key/value/
     * proj_attn: such a folder failed after the UNet was read. It now reads as diffusers reads it, decoding the same.
     */
    @Test
    void aVaeWithTheDeprecatedAttentionNamesReadsAsToday() throws IOException {
        Path model = copyOfFixture();
        Path vaeFile = model.resolve("vae/diffusion_pytorch_model.safetensors");
        Safetensors today = Safetensors.open(vaeFile);
        Map<String, String> rename = Map.of("to_q", "query", "to_k", "key", "to_v", "value", "to_out.0", "proj_attn");
        int renamed = 0;
        try (Scope s = Scope.inference()) {
            Map<String, Tensor> old = new LinkedHashMap<>();
            for (String key : today.keys()) {
                String name = key;
                for (Map.Entry<String, String> r : rename.entrySet()) {
                    String part = ".attentions.0." + r.getKey() + ".";
                    if (key.contains("mid_block") && key.contains(part)) name = key.replace(part, ".attentions.0." + r.getValue() + ".");
                }
                if (!name.equals(key)) renamed++;
                old.put(name, today.get(key));
            }
            Safetensors.write(vaeFile, old, today.metadata(), Safetensors.StoredType.F32);
        }
        assertTrue(renamed >= 8, "the fixture's VAE has mid-block attention in encoder and decoder: " + renamed);
        StateDict read = DiffusersFolder.vaeWeights(model.resolve("vae"), Optional.empty());
        assertEquals(Safetensors.open(Fixtures.diffusers().resolve("vae/diffusion_pytorch_model.safetensors")).keys(), read.keys());

        StableDiffusion original = StableDiffusion.load(Fixtures.diffusers(), ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float, Progress.NONE);
        StableDiffusion renamedModel = StableDiffusion.load(model, ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float, Progress.NONE);
        try (Scope s = Scope.inference()) {
            Tensor z = dev.perfusion.pipeline.SeededNoise.forPicture(3).randn(new long[] {1, original.vae.config().latentChannels(), 8, 8});
            assertArrayEquals(Ops.toFloats(original.vae.decode(z)), Ops.toFloats(renamedModel.vae.decode(z)), "the same decoder, bit for bit");
        }
    }

    /** Without a variant an fp32 .bin is read before an .fp16 safetensors, as diffusers chooses (the fp16 one held rounded weights). */
    @Test
    void withoutAVariantTheFullPrecisionBinComesBeforeAnFp16Safetensors() throws IOException {
        Path unet = Files.createDirectories(tmp.resolve("unet"));
        Files.copy(Fixtures.shared().resolve("fixtures/sd-tiny/pickle/diffusers-bin/unet/diffusion_pytorch_model.bin"), unet.resolve("diffusion_pytorch_model.bin"));
        Files.copy(Fixtures.diffusers().resolve("unet/diffusion_pytorch_model.safetensors"), unet.resolve("diffusion_pytorch_model.fp16.safetensors"));
        StateDict chosen = DiffusersFolder.weights(unet, Optional.empty());
        String any = chosen.keys().iterator().next();
        assertTrue(chosen.describe(any).contains("diffusion_pytorch_model.bin"), chosen.describe(any));
        StateDict fp16 = DiffusersFolder.weights(unet, Optional.of("fp16"));
        assertTrue(fp16.describe(any).contains("diffusion_pytorch_model.fp16.safetensors"), fp16.describe(any));
    }

    /** A folder whose scheduler config is out of date is read as diffusers' pipeline reads it, saying so. */
    @Test
    void anOutOfDateSchedulerConfigIsReadAsThePipelineReadsItWithANote() throws IOException {
        Path model = dev.perfusion.world.BundledWorld.copyOfModel(tmp.resolve("old"));
        Files.writeString(model.resolve("scheduler/scheduler_config.json"), "{\"_class_name\": \"DDIMScheduler\", \"beta_schedule\": "
                + "\"scaled_linear\", \"beta_start\": 0.00085, \"beta_end\": 0.012}");
        ResolvedModel m = ModelSource.resolve(model, ModelSource.Options.defaults());
        assertEquals(1, m.schedulerConfig().stepsOffset());
        assertFalse(m.schedulerConfig().clipSample(dev.perfusion.sampling.SchedulerConfig.ClassDefaults.DDIM));
        assertTrue(m.notes().contains("the scheduler config is out of date: steps_offset 0 -> 1, clip_sample true -> false, as diffusers' pipeline sets it"),
                m.notes().toString());
    }
}
