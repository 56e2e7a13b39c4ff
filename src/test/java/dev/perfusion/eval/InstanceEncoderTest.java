package dev.perfusion.eval;

import dev.perfusion.io.Safetensors;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.util.Progress;
import dev.perfusion.world.Bundled;
import dev.perfusion.world.HeldOut;
import dev.perfusion.world.Sample;
import dev.perfusion.world.WorldGenerator;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class InstanceEncoderTest {
    @TempDir Path tmp;

    /** The shipped encoder, which never saw the held-out concepts, tells them apart from new views. */
    @Test
    void bundledEncoderTellsHeldOutInstancesApart() throws Exception {
        InstanceEncoder encoder = InstanceEncoder.load(Bundled.instanceEncoder());
        double top1 = encoder.retrieval(HeldOut.instances(), 4242);
        assertTrue(top1 > 0.9, "top-1 retrieval among the held-out instances: " + top1);
    }

    /** Each score kept its embeddings past its own scope, for the GC: now they go with the scope (MethodEvaluation scores many batches). */
    @Test
    void scoringLeavesNoNativeObjectsBehind() throws Exception {
        InstanceEncoder encoder = InstanceEncoder.load(Bundled.instanceEncoder());
        List<Sample> views = new WorldGenerator().views(HeldOut.instances().get(0), 2, 7);
        try (Scope s = Scope.inference()) {
            Tensor pictures = AttributeClassifier.pictures(views);
            Tensor reference = encoder.reference(pictures);
            encoder.similarity(pictures, null, reference); // the first call loads what stays loaded
            encoder.identify(pictures, null, reference.reshape(1, -1));
            long before = org.bytedeco.javacpp.Pointer.totalCount();
            for (int i = 0; i < 20; i++) {
                encoder.similarity(pictures, null, reference);
                encoder.identify(pictures, null, reference.reshape(1, -1));
            }
            long left = org.bytedeco.javacpp.Pointer.totalCount() - before;
            assertTrue(left < 30, "native objects left by 20 scores of each kind: " + left);
        }
    }

    /** Known answers: each picture against a gallery made of the pictures themselves picks its own row, wherever it stands. */
    @Test
    void identifyPicksTheMostSimilarRowOfTheGallery() throws Exception {
        InstanceEncoder encoder = InstanceEncoder.load(Bundled.instanceEncoder());
        WorldGenerator world = new WorldGenerator();
        List<Sample> views = new ArrayList<>();
        for (int k = 0; k < 3; k++) views.add(world.views(HeldOut.instances().get(k), 1, 7).get(0));
        try (Scope s = Scope.inference()) {
            Tensor pictures = AttributeClassifier.pictures(views);
            List<Tensor> rows = new ArrayList<>();
            for (Sample v : views) rows.add(encoder.reference(AttributeClassifier.pictures(List.of(v))));
            assertArrayEquals(new long[] {0, 1, 2}, encoder.identify(pictures, null, Ops.stack(rows, 0)));
            assertArrayEquals(new long[] {2, 0, 1}, encoder.identify(pictures, null, Ops.stack(List.of(rows.get(1), rows.get(2), rows.get(0)), 0)),
                    "the answer follows the rows");
            assertArrayEquals(new long[] {0, 0, 0}, encoder.identify(pictures, null, rows.get(1).reshape(1, -1)), "one row: always it");
        }
    }

    @Test
    void shortTrainingSavesWhatItScored() throws Exception {
        InstanceEncoder.Trained t = InstanceEncoder.train(5, 8, 16, 3, Progress.NONE);
        assertTrue(t.accuracy().heldOutConcepts() >= 0 && t.accuracy().heldOutConcepts() <= 1);
        Path file = tmp.resolve("e.safetensors");
        t.save(file);
        var metadata = Safetensors.open(file).metadata();
        assertEquals("5", metadata.get("steps"), metadata.toString());
        InstanceEncoder back = InstanceEncoder.load(file);
        assertNotNull(back.reference(AttributeClassifier.pictures(new WorldGenerator().views(HeldOut.instances().get(0), 2, 1))));
    }
}
