package dev.perfusion.world;

/** Where an object sits; anchors are the object's box centre in image fractions (y down). */
public enum Placement {
    LEFT("on the left", 0.25, 0.58),
    RIGHT("on the right", 0.75, 0.58),
    TOP("at the top", 0.50, 0.28),
    BOTTOM("at the bottom", 0.50, 0.73),
    CENTER("in the middle", 0.50, 0.55);

    private final String phrase;
    private final double x;
    private final double y;

    Placement(String phrase, double x, double y) {
        this.phrase = phrase;
        this.x = x;
        this.y = y;
    }

    public String phrase() {
        return phrase;
    }

    public double x() {
        return x;
    }

    public double y() {
        return y;
    }

    public Placement opposite() {
        return switch (this) {
            case LEFT -> RIGHT;
            case RIGHT -> LEFT;
            case TOP -> BOTTOM;
            case BOTTOM -> TOP;
            case CENTER -> CENTER;
        };
    }
}
