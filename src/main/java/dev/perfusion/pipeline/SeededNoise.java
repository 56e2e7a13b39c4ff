package dev.perfusion.pipeline;

import dev.perfusion.sampling.NoiseSource;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

import java.util.Random;

/**
 * Unit Gaussian noise from a seed, drawn in Java so that a seed gives the same image on every machine and
 * device this project runs on (it cannot reproduce torch's generator, so seeds do not match other tools).
 */
public final class SeededNoise implements NoiseSource {
    private final Random random;

    public SeededNoise(long seed) {
        this.random = new Random(seed);
    }

    @Override
    public Tensor randn(long... shape) {
        float[] v = new float[Math.toIntExact(Ops.numel(shape))];
        for (int i = 0; i < v.length; i++) v[i] = (float) random.nextGaussian();
        return Ops.fromFloats(v, shape);
    }
}
