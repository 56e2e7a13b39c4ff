package dev.perfusion.pretrain;

import dev.perfusion.tensor.CpuFeatures;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.vae.AutoencoderKL;
import dev.perfusion.world.Bundled;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The diffusion stage's frozen VAE encodes its batches in bf16 where the CPU computes bf16 natively: as near fp32 as that allows. */
class BatchEncodingTest {
    @Test
    void bf16LatentsOfWorldPicturesStayFarBelowTheLeastNoiseTheUNetLearnsAt() throws Exception {
        assumeTrue(CpuFeatures.nativeBf16(), "this CPU has no native bf16 (" + CpuFeatures.isa() + "): the stage encodes in fp32 there");
        BaseModelRecipe recipe = BaseModelRecipe.frozenText();
        Path vaeFolder = Bundled.model().resolve("vae");
        AutoencoderKL fp32 = AutoencoderKL.load(vaeFolder, Ops.cpu(), ScalarType.Float);
        AutoencoderKL bf16 = AutoencoderKL.load(vaeFolder, Ops.cpu(), ScalarType.BFloat16);
        bf16.storeConvolutionsChannelsLast();
        try (WorldBatches batches = new WorldBatches(recipe); Scope s = Scope.inference()) {
            Tensor images = batches.now(new WorldBatches.Series(5, 16, false), 0).images();
            double scale = fp32.config().scalingFactor();
            Tensor exact = Ops.mul(DiffusionStage.encodedMean(fp32, ScalarType.Float, images), scale);
            Tensor rounded = Ops.mul(DiffusionStage.encodedMean(bf16, ScalarType.BFloat16, images), scale);
            assertEquals(ScalarType.Float, rounded.scalar_type().intern(), "latents come back in fp32");
            Tensor difference = exact.sub(rounded).abs();
            double mean = difference.mean().item_double(), max = difference.max().item_double();
            double leastNoise = Math.sqrt(1 - new dev.perfusion.sampling.NoiseSchedule(recipe.schedulerConfig()).alphaCumprod(0));
            // measured: mean 0.0034, max 0.025 of latents with mean |z| 0.85; the least noise 0.029
            assertTrue(mean < leastNoise / 4, "mean |bf16 - fp32| " + mean + " against the least noise " + leastNoise);
            assertTrue(max < 0.1, "largest |bf16 - fp32| " + max);
            assertTrue(mean > 0, "bf16 rounds: the two encoders must differ somewhere");
        }
    }
}
