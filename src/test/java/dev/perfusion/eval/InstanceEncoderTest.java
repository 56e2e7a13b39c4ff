package dev.perfusion.eval;

import dev.perfusion.io.Safetensors;
import dev.perfusion.util.Progress;
import dev.perfusion.world.Bundled;
import dev.perfusion.world.HeldOut;
import dev.perfusion.world.WorldGenerator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

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
