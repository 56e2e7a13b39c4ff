package dev.perfusion.world;

/** Backgrounds; the phrase is what captions say about them. */
public enum Scene {
    BEACH("on the beach"),
    SNOW("in the snow"),
    GRASS("on the grass"),
    NIGHT("at night"),
    ROOM("in a room"),
    DESERT("in the desert"),
    FOREST("in the forest"),
    CITY("in the city");

    private final String phrase;

    Scene(String phrase) {
        this.phrase = phrase;
    }

    public String phrase() {
        return phrase;
    }
}
