package dev.perfusion.perfusion;

import dev.perfusion.pipeline.SeededNoise;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.sampling.NoiseSchedule;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.unet.Attention;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
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
        List<Attention> layers = sd.unet.crossAttentionLayers();
        NoiseSchedule schedule = new NoiseSchedule(sd.schedulerConfig);
        try (Scope s = Scope.inference()) {
            Tensor ids = sd.tokenize(List.of("a photo of a " + supercategory), m -> {});
            long position = positionOf(ids, superId);
            Tensor text = sd.encodePrompts(List.of("a photo of a " + supercategory), m -> {});
            List<Tensor> maps = new ArrayList<>();
            for (Attention a : layers) {
                a.setObserver(p -> {
                    // p [B, heads, hw', tokens]: the word's column, mean over heads, as a map at this layer's resolution
                    long tokens = Ops.shape(p)[2];
                    long side = Math.round(Math.sqrt((double) tokens * w / h));
                    Tensor column = p.select(3, position).mean(new long[] {1}, false, new org.bytedeco.pytorch.ScalarTypeOptional());
                    Tensor map = column.reshape(1, 1, tokens / side, side);
                    maps.add(Scope.keep(torch.upsample_bilinear2d(map, new long[] {h, w}, false)));
                });
            }
            try {
                for (int i = 0; i < NOISE_DRAWS; i++) {
                    Tensor noise = new SeededNoise(seed + i).randn(shape).to(x0.device(), x0.scalar_type());
                    Tensor noisy = schedule.addNoise(x0, noise, new long[] {TIMESTEP});
                    sd.unet.forward(noisy, Ops.fromFloats(new float[] {TIMESTEP}, 1).to(x0.device(), x0.scalar_type()), text);
                }
            } finally {
                for (Attention a : layers) a.setObserver(null);
            }
            Tensor mean = Ops.div(Ops.stack(maps, 0).sum(new long[] {0}, false, new org.bytedeco.pytorch.ScalarTypeOptional()), maps.size());
            return Scope.keep(Ops.div(mean, Math.max(1e-12, Ops.item(mean.max()))));
        }
    }

    private static long positionOf(Tensor ids, long token) {
        long[] row = Ops.toLongs(ids.select(0, 0));
        for (int i = 0; i < row.length; i++) if (row[i] == token) return i;
        throw new IllegalStateException("the supercategory token is not in its own prompt");
    }

}
