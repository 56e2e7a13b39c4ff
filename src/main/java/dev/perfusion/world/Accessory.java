package dev.perfusion.world;

/** An identifying add-on; which ones a category can wear is listed by {@link Category#accessories()}. */
public enum Accessory {
    NONE, BOW, HAT, SCARF, COLLAR, ROOF_BOX, FLAG, HEART, STAR
}
