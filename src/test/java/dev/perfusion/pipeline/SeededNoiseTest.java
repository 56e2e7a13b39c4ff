package dev.perfusion.pipeline;

import dev.perfusion.tensor.Ops;
import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/** A seed is a picture: every bit of it counts, and seeds that drew a picture before still draw it. */
class SeededNoiseTest {
    @Test
    void seedsBelow2To48DrawWhatTheyDrew() {
        for (long seed : new long[] {0, 7, 1234567, (1L << 48) - 1}) {
            Random before = new Random(seed);
            float[] now = Ops.toFloats(SeededNoise.forPicture(seed).randn(16));
            for (float v : now) assertEquals((float) before.nextGaussian(), v, 0f, "seed " + seed);
        }
        // training's noise, seeded from a generator's full 64-bit draws, is the generator's as before
        long drawn = new java.util.SplittableRandom(3).nextLong();
        Random before = new Random(drawn);
        for (float v : Ops.toFloats(new SeededNoise(drawn).randn(16))) assertEquals((float) before.nextGaussian(), v, 0f);
    }

    @Test
    void seedsThatDifferAbove48BitsDrawOtherNoise() {
        float[] zero = Ops.toFloats(SeededNoise.forPicture(0).randn(8));
        assertFalse(java.util.Arrays.equals(zero, Ops.toFloats(SeededNoise.forPicture(1L << 50).randn(8))), "2^50 drew seed 0's noise");
        assertFalse(java.util.Arrays.equals(Ops.toFloats(SeededNoise.forPicture((1L << 48) - 1).randn(8)), Ops.toFloats(SeededNoise.forPicture(-1).randn(8))),
                "-1 drew 2^48 - 1's noise");
        // every value of the 16 high bits moves the generator's 48-bit seed to its own place
        Set<Long> moved = new HashSet<>();
        for (long high = 0; high < 1 << 16; high++) moved.add(SeededNoise.generatorSeed(high << 48) & ((1L << 48) - 1));
        assertEquals(1 << 16, moved.size());
    }
}
