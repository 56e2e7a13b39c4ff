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

    /** Noise from the generator's own seed, of which Java keeps 48 bits (training draws its seeds from a generator). */
    public SeededNoise(long seed) {
        this.random = new Random(seed);
    }

    /** A picture's noise from a seed someone gives ({@code --seed}, the web app's): every bit of it counts. */
    public static SeededNoise forPicture(long seed) {
        return new SeededNoise(generatorSeed(seed));
    }

    /**
     * Java's generator keeps 48 bits of its seed, so 2^50 drew seed 0's picture: the 16 bits above are folded into
     * the 48 below. Seeds from 0 to 2^48 - 1 are unchanged, so their pictures are what they were.
     */
    static long generatorSeed(long seed) {
        long high = seed >>> 48;
        return seed ^ ((high * 0x9E3779B97F4A7C15L) >>> 16);
    }

    @Override
    public Tensor randn(long... shape) {
        float[] v = new float[Math.toIntExact(Ops.numel(shape))];
        for (int i = 0; i < v.length; i++) v[i] = (float) random.nextGaussian();
        return Ops.fromFloats(v, shape);
    }
}
