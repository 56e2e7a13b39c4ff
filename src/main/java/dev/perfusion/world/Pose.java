package dev.perfusion.world;

import java.util.SplittableRandom;

/** Per-render variation that does not change an instance's identity. */
public record Pose(boolean mirrored, double angleDegrees, double scale, double dx, double dy) {
    public static final Pose NEUTRAL = new Pose(false, 0, 1, 0, 0);

    public static Pose random(SplittableRandom rng) {
        return new Pose(rng.nextBoolean(), rng.nextDouble(-6, 6), rng.nextDouble(0.92, 1.0),
                rng.nextDouble(-0.035, 0.035), rng.nextDouble(-0.035, 0.035));
    }
}
