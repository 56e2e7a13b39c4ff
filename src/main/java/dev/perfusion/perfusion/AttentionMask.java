package dev.perfusion.perfusion;

import dev.perfusion.pipeline.CrossAttentionMaps;
import dev.perfusion.pipeline.SeededNoise;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.sampling.NoiseSchedule;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.util.List;

/**
 * A zero-shot soft mask of the concept from the model itself, needing no segmentation model: where the
 * supercategory word's cross-attention falls when the model denoises a lightly noised training image while
 * reading "a photo of a {supercategory}". Averaged over heads, layers and a few noise draws; scaled to max 1.
 */
public final class AttentionMask {
    private static final int NOISE_DRAWS = 2;
    private static final int TIMESTEP = 300;

    private AttentionMask() {}

    /** Mask [1, 1, h, w] at the latent resolution of {@code x0} [1, C, h, w]. */
    public static Tensor of(StableDiffusion sd, Tensor x0, String supercategory, long seed) {
        long superId = AppliedConcepts.singleToken(sd.tokenizer, supercategory);
        long[] shape = Ops.shape(x0);
        long h = shape[2], w = shape[3];
        NoiseSchedule schedule = new NoiseSchedule(sd.schedulerConfig);
        try (Scope s = Scope.inference()) {
            Tensor ids = sd.tokenize(List.of("a photo of a " + supercategory), m -> {});
            long position = positionOf(ids, superId);
            Tensor text = sd.encodePrompts(List.of("a photo of a " + supercategory), m -> {});
            Tensor mean;
            try (CrossAttentionMaps maps = CrossAttentionMaps.observe(1, h, w)) {
                for (int i = 0; i < NOISE_DRAWS; i++) {
                    Tensor noise = new SeededNoise(seed + i).randn(shape).to(x0.device(), torch.ScalarType.Float);
                    Tensor noisy = schedule.addNoise(Ops.toFloat32(x0), noise, new long[] {TIMESTEP});
                    sd.unet.forward(noisy.to(sd.dtype), Ops.fromFloats(new float[] {TIMESTEP}, 1).to(x0.device(), torch.ScalarType.Float), text.to(sd.dtype));
                }
                mean = maps.mean().narrow(1, position, 1);
            }
            return Scope.keep(Ops.div(mean, Math.max(1e-12, Ops.item(mean.max()))));
        }
    }

    private static long positionOf(Tensor ids, long token) {
        long[] row = Ops.toLongs(ids.select(0, 0));
        for (int i = 0; i < row.length; i++) if (row[i] == token) return i;
        throw new IllegalStateException("the supercategory token is not in its own prompt");
    }

}
