package dev.perfusion.eval;

import dev.perfusion.world.Bundled;

import java.io.IOException;

/**
 * The judges of generated world pictures, as an evaluation uses them together: what a picture shows (the attribute
 * classifier), which particular instance (the instance encoder), the paper's CLIP scores (the world's CLIP), and
 * whether one object is drawn twice (the object counter).
 */
public record WorldJudges(AttributeClassifier classifier, InstanceEncoder instances, WorldClip clip, ObjectCounter counter) {
    /** The judges shipped in models/ (trained by {@code perfusion judges}). */
    public static WorldJudges bundled() throws IOException {
        return new WorldJudges(AttributeClassifier.load(Bundled.classifier()), InstanceEncoder.load(Bundled.instanceEncoder()),
                WorldClip.load(Bundled.worldClip()), ObjectCounter.load(Bundled.objectCounter()));
    }
}
