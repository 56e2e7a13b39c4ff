package dev.perfusion.world;

/** Surface pattern of an object's main part, painted in the instance's secondary colour. */
public enum Pattern {
    PLAIN, STRIPES, SPOTS, CHECKS
}
