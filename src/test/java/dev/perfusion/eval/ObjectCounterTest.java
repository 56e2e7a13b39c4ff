package dev.perfusion.eval;

import dev.perfusion.io.Safetensors;
import dev.perfusion.util.Progress;
import dev.perfusion.world.Bundled;
import dev.perfusion.world.HeldOut;
import dev.perfusion.world.Instance;
import dev.perfusion.world.Placement;
import dev.perfusion.world.Sample;
import dev.perfusion.world.Scene;
import dev.perfusion.world.SceneSpec;
import dev.perfusion.world.Size;
import dev.perfusion.world.WorldGenerator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** The judge of an object drawn twice. */
class ObjectCounterTest {
    @TempDir Path tmp;

    /** The shipped counter, on pictures from seeds its training and its recorded accuracy never drew. */
    @Test
    void bundledCounterTellsOneObjectFromTheSameConceptTwice() throws Exception {
        ObjectCounter counter = ObjectCounter.load(Bundled.objectCounter());
        WorldGenerator world = new WorldGenerator(64);
        SplittableRandom rng = new SplittableRandom(20261206);
        List<BufferedImage> singles = new ArrayList<>(), twice = new ArrayList<>();
        List<Instance> held = HeldOut.instances();
        for (int i = 0; i < 120; i++) {
            singles.add(world.render(AttributeClassifier.randomSingle(rng), rng.nextLong()).image());
            Instance concept = held.get(i % held.size());
            twice.add(ObjectCounter.twoOf(world, concept, concept, rng));
        }
        assertTrue(counter.twiceRate(singles) <= 0.05, "one object read as two: " + counter.twiceRate(singles));
        assertTrue(counter.twiceRate(twice) >= 0.95, "a held-out concept twice read as two: " + counter.twiceRate(twice));
        // the judge reads pictures of any size, as a 128x128 model draws them
        BufferedImage large = new WorldGenerator(128).render(SceneSpec.pair(held.get(0), held.get(0), Scene.values()[0], Size.MEDIUM), 5).image();
        assertTrue(counter.twoObjects(AttributeClassifier.picturesOf(List.of(large)))[0], "two of the same at 128x128");
    }

    @Test
    void theSecondObjectIsLaidOverTheFirstThroughItsMask() {
        WorldGenerator world = new WorldGenerator(64);
        Instance teddy = HeldOut.instances().get(0);
        Sample under = world.render(SceneSpec.single(teddy, Scene.values()[1], Placement.LEFT, Size.SMALL), 9);
        Sample over = world.render(SceneSpec.single(teddy, Scene.values()[1], Placement.RIGHT, Size.SMALL), 9);
        BufferedImage both = ObjectCounter.laidOver(under.image(), over.image(), over.mask());
        int fromUnder = 0, fromOver = 0;
        for (int y = 0; y < 64; y++) {
            for (int x = 0; x < 64; x++) {
                float m = over.mask()[y * 64 + x];
                if (m == 0) assertEquals(under.image().getRGB(x, y), both.getRGB(x, y), "outside the mask: the first picture, at " + x + "," + y);
                if (m == 1) assertEquals(over.image().getRGB(x, y), both.getRGB(x, y), "inside the mask: the second picture, at " + x + "," + y);
                if (m == 0 && under.mask()[y * 64 + x] > 0.5) fromUnder++;
                if (m == 1) fromOver++;
            }
        }
        assertTrue(fromUnder > 50 && fromOver > 50, "both objects show: " + fromUnder + " and " + fromOver + " pixels");
    }

    @Test
    void savedCounterReadsTheSameAfterLoading() throws Exception {
        ObjectCounter.Trained t = ObjectCounter.train(20, 8, 3, Progress.NONE);
        Path file = tmp.resolve("counter.safetensors");
        t.save(file);
        assertTrue(Safetensors.open(file).metadata().containsKey("accuracy.heldout.twice"));
        WorldGenerator world = new WorldGenerator(64);
        SplittableRandom rng = new SplittableRandom(4);
        List<BufferedImage> pictures = new ArrayList<>();
        for (int i = 0; i < 16; i++) pictures.add(i % 2 == 0 ? world.render(AttributeClassifier.randomSingle(rng), rng.nextLong()).image()
                : ObjectCounter.twoOf(world, HeldOut.instances().get(0), HeldOut.instances().get(1), rng));
        boolean[] before = t.model().twoObjects(AttributeClassifier.picturesOf(pictures));
        boolean[] after = ObjectCounter.load(file).twoObjects(AttributeClassifier.picturesOf(pictures));
        int same = 0;
        for (int i = 0; i < 16; i++) if (before[i] == after[i]) same++;
        assertTrue(same >= 15, "fp16 storage changed " + (16 - same) + " of 16 readings: " + Arrays.toString(before) + " " + Arrays.toString(after));
    }
}
