package dev.perfusion.world;

import java.util.Objects;
import java.util.Optional;

/**
 * Everything a rendered sample's labels say: scene, primary object and an optional second object.
 * Pose jitter and background details come from the render seed, not from the spec.
 */
public record SceneSpec(Scene scene, Placed primary, Placed second) {
    public SceneSpec {
        Objects.requireNonNull(scene);
        Objects.requireNonNull(primary);
        if (second != null && (primary.placement() == second.placement()
                || !isSideBySide(primary.placement()) || !isSideBySide(second.placement()))) {
            // Pairs stand side by side so that masks do not overlap and "left"/"right" stay true.
            throw new IllegalArgumentException("a pair needs one object on the left and one on the right");
        }
    }

    public static SceneSpec single(Instance inst, Scene scene, Placement placement, Size size) {
        return new SceneSpec(scene, new Placed(inst, placement, size), null);
    }

    public static SceneSpec pair(Instance left, Instance right, Scene scene, Size size) {
        return new SceneSpec(scene, new Placed(left, Placement.LEFT, size), new Placed(right, Placement.RIGHT, size));
    }

    public Optional<Placed> secondObject() {
        return Optional.ofNullable(second);
    }

    public SceneSpec withPrimary(Instance inst) {
        return new SceneSpec(scene, primary.with(inst), second);
    }

    private static boolean isSideBySide(Placement p) {
        return p == Placement.LEFT || p == Placement.RIGHT;
    }
}
