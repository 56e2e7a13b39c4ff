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

    /**
     * A judge file of another judge (the trunks have the same shapes), with a NaN weight, or missing: each refused saying
     * which file and what to do; a NaN weight read every picture as one class, silently.
     */
    @Test
    void aWrongBrokenOrMissingJudgeFileIsRefusedNamingIt() throws Exception {
        java.io.IOException other = assertThrows(java.io.IOException.class, () -> AttributeClassifier.load(Bundled.instanceEncoder()));
        assertEquals(Bundled.instanceEncoder() + ": a world instance encoder, not the attribute classifier this needs", other.getMessage());
        java.io.IOException missing = assertThrows(java.io.IOException.class, () -> AttributeClassifier.load(tmp.resolve("none.safetensors")));
        assertTrue(missing.getMessage().contains("train one with `perfusion judges --only classifier`"), missing.getMessage());

        Safetensors shipped = Safetensors.open(Bundled.classifier());
        String last = List.copyOf(shipped.keys()).get(shipped.keys().size() - 1);
        Path broken = tmp.resolve("broken.safetensors");
        try (dev.perfusion.tensor.Scope s = dev.perfusion.tensor.Scope.inference()) {
            Map<String, org.bytedeco.pytorch.Tensor> tensors = new java.util.LinkedHashMap<>();
            for (String k : shipped.keys()) tensors.put(k, shipped.get(k).to(org.bytedeco.pytorch.global.torch.ScalarType.Float));
            tensors.put(last, tensors.get(last).mul(new org.bytedeco.pytorch.Scalar(Double.NaN)));
            Safetensors.write(broken, tensors, shipped.metadata(), Safetensors.StoredType.F32);
        }
        java.io.IOException nan = assertThrows(java.io.IOException.class, () -> AttributeClassifier.load(broken));
        assertEquals(broken + ": tensor " + last + " of the attribute classifier is not finite (NaN or infinite values)", nan.getMessage());
    }

    /** A judge whose loss turns NaN stops at that step instead of being saved with every score wrong. */
    @Test
    void aNonFiniteLossStopsTheJudgesTraining() {
        AttributeClassifier model = new AttributeClassifier();
        dev.perfusion.nn.Weights.initRandom(model, 1);
        dev.perfusion.nn.AdamW optimizer = Judges.optimizer(1e-3, model);
        int[] steps = {0};
        dev.perfusion.tensor.NonFiniteException e = assertThrows(dev.perfusion.tensor.NonFiniteException.class,
                () -> Judges.train("attribute classifier", 5, optimizer, Progress.NONE, step -> {
                    steps[0]++;
                    org.bytedeco.pytorch.Tensor w = model.namedParameters().values().iterator().next().t();
                    return w.sum().mul(new org.bytedeco.pytorch.Scalar(step == 1 ? Double.NaN : 1.0));
                }));
        assertEquals("training the attribute classifier: the loss is NaN at step 2 of 5; nothing was saved", e.getMessage());
        assertEquals(2, steps[0]);
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
