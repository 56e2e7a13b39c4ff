package dev.perfusion.eval;

import dev.perfusion.eval.AttributeClassifier.Attribute;
import dev.perfusion.io.Safetensors;
import dev.perfusion.util.Progress;
import dev.perfusion.world.Bundled;
import dev.perfusion.world.Sample;
import dev.perfusion.world.WorldGenerator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class AttributeClassifierTest {
    @TempDir Path tmp;

    @Test
    void savedClassifierPredictsTheSameAfterLoading() throws Exception {
        AttributeClassifier.Trained t = AttributeClassifier.train(20, 8, 3, Progress.NONE);
        Path file = tmp.resolve("c.safetensors");
        t.save(file);
        assertTrue(Safetensors.open(file).metadata().containsKey("accuracy.unseen.category"));
        List<Sample> pictures = AttributeClassifier.unseen(new WorldGenerator(), 5, false).subList(0, 16);
        Map<Attribute, long[]> before = t.model().predict(AttributeClassifier.pictures(pictures));
        Map<Attribute, long[]> after = AttributeClassifier.load(file).predict(AttributeClassifier.pictures(pictures));
        for (Attribute a : Attribute.values()) {
            int same = 0;
            for (int i = 0; i < 16; i++) if (before.get(a)[i] == after.get(a)[i]) same++;
            assertTrue(same >= 15, a + ": fp16 storage changed " + (16 - same) + " of 16 predictions");
        }
    }

    /** The shipped judge reads pictures it never saw, of unseen instances, almost always right. */
    @Test
    void bundledClassifierReadsUnseenPictures() throws Exception {
        AttributeClassifier judge = AttributeClassifier.load(Bundled.classifier());
        List<Sample> pictures = AttributeClassifier.unseen(new WorldGenerator(), 12345, false).subList(0, 200);
        Map<Attribute, Double> acc = judge.accuracy(pictures);
        assertTrue(acc.get(Attribute.CATEGORY) > 0.9, "category " + acc);
        assertTrue(acc.get(Attribute.SCENE) > 0.9, "scene " + acc);
        assertTrue(acc.get(Attribute.PLACEMENT) > 0.85, "placement " + acc);
    }
}
