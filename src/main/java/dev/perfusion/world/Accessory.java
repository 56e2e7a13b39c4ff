package dev.perfusion.world;

import java.util.Optional;

/** An identifying add-on; which ones a category can wear is listed by {@link Category#accessories()}. */
public enum Accessory {
    NONE(null), BOW("bow"), HAT("hat"), SCARF("scarf"), COLLAR("collar"), ROOF_BOX("roof box"), FLAG("flag"),
    HEART("heart"), STAR("star");

    private final String phrase;

    Accessory(String phrase) {
        this.phrase = phrase;
    }

    /** How a detailed caption names it after its colour ("with a blue bow"); none for {@link #NONE}. */
    public Optional<String> phrase() {
        return Optional.ofNullable(phrase);
    }
}
