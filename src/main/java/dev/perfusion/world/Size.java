package dev.perfusion.world;

import java.util.Optional;

/** Object size as a fraction of the image side; medium is the unmarked default and has no caption word. */
public enum Size {
    SMALL("small", 0.32),
    MEDIUM(null, 0.44),
    LARGE("large", 0.58);

    private final String word;
    private final double fraction;

    Size(String word, double fraction) {
        this.word = word;
        this.fraction = fraction;
    }

    public Optional<String> word() {
        return Optional.ofNullable(word);
    }

    public double fraction() {
        return fraction;
    }
}
