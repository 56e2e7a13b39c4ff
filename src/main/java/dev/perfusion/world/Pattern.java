package dev.perfusion.world;

import java.util.Optional;

/** Surface pattern of an object's main part, painted in the instance's secondary colour. */
public enum Pattern {
    PLAIN(null), STRIPES("striped"), SPOTS("spotted"), CHECKS("checked");

    private final String adjective;

    Pattern(String adjective) {
        this.adjective = adjective;
    }

    /** How a detailed caption names it before the colour ("a striped red mug"); none for a plain body. */
    public Optional<String> adjective() {
        return Optional.ofNullable(adjective);
    }
}
