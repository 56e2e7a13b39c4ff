package dev.perfusion.world;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import java.awt.image.BufferedImage;
import org.junit.jupiter.api.Test;

class DeterminismTest {
    static int[] pixels(BufferedImage img) {
        return img.getRGB(0, 0, img.getWidth(), img.getHeight(), null, 0, img.getWidth());
    }

    @Test
    void sameSeedGivesIdenticalSample() {
        // Two generators, so no hidden state in one instance can make the test pass.
        WorldGenerator a = new WorldGenerator();
        WorldGenerator b = new WorldGenerator();
        for (long seed = 0; seed < 40; seed++) {
            Sample x = a.sample(seed);
            Sample y = b.sample(seed);
            assertArrayEquals(pixels(x.image()), pixels(y.image()), "pixels of seed " + seed);
            assertEquals(x.caption(), y.caption());
            assertEquals(x.labels(), y.labels());
            assertEquals(x.masks().size(), y.masks().size());
            for (int i = 0; i < x.masks().size(); i++) {
                assertArrayEquals(x.masks().get(i), y.masks().get(i));
            }
        }
    }

    @Test
    void differentSeedsDiffer() {
        WorldGenerator w = new WorldGenerator();
        for (long seed = 0; seed < 40; seed++) {
            Sample x = w.sample(seed);
            Sample y = w.sample(seed + 1000);
            assertFalse(java.util.Arrays.equals(pixels(x.image()), pixels(y.image())), "seed " + seed);
            assertNotEquals(x.labels(), y.labels());
        }
    }

    @Test
    void renderIsAFunctionOfSpecAndSeed() {
        WorldGenerator w = new WorldGenerator();
        Instance inst = HeldOut.instances().get(0);
        SceneSpec spec = SceneSpec.single(inst, Scene.BEACH, Placement.LEFT, Size.MEDIUM);
        assertArrayEquals(pixels(w.render(spec, 7).image()), pixels(w.render(spec, 7).image()));
        assertArrayEquals(pixels(w.render(spec).image()), pixels(new WorldGenerator().render(spec).image()));
        assertFalse(java.util.Arrays.equals(pixels(w.render(spec, 7).image()), pixels(w.render(spec, 8).image())));
    }

    @Test
    void instancesAreReproducibleFromTheirSeed() {
        for (Category c : Category.values()) {
            for (long s = 0; s < 20; s++) {
                assertEquals(Instance.random(c, s), Instance.random(c, s));
            }
            assertNotEquals(Instance.random(c, 1), Instance.random(c, 2));
        }
        assertEquals(WorldGenerator.trainingSpec(5), new WorldGenerator().sample(5).labels().spec());
    }

    @Test
    void largerRendersShowTheSameScene() {
        Sample small = new WorldGenerator(64).sample(3);
        Sample big = new WorldGenerator(256).sample(3);
        assertEquals(small.caption(), big.caption());
        assertEquals(small.labels(), big.labels());
        assertEquals(256, big.image().getWidth());
        assertEquals(256 * 256, big.mask().length);
    }
}
