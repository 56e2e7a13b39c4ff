package dev.perfusion.world;

import java.util.Optional;

/** What a sample shows: its spec plus the poses it was drawn in. Convenience accessors read the primary object. */
public record Labels(SceneSpec spec, Pose primaryPose, Pose secondPose) {
    public Instance instance() {
        return spec.primary().instance();
    }

    public Category category() {
        return instance().category();
    }

    public String instanceId() {
        return instance().id();
    }

    public ColorWord color() {
        return instance().color();
    }

    public Scene scene() {
        return spec.scene();
    }

    public Placement placement() {
        return spec.primary().placement();
    }

    public Size size() {
        return spec.primary().size();
    }

    public Optional<Placed> second() {
        return spec.secondObject();
    }
}
