package dev.perfusion.world;

import java.util.Objects;

/** An instance at a placement and size within a scene. */
public record Placed(Instance instance, Placement placement, Size size) {
    public Placed {
        Objects.requireNonNull(instance);
        Objects.requireNonNull(placement);
        Objects.requireNonNull(size);
    }

    public Placed with(Instance other) {
        return new Placed(other, placement, size);
    }
}
