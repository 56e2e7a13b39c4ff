package dev.perfusion.world;

import java.util.List;

/** Object supercategories; the word is the class noun used in captions (and as Perfusion's superclass). */
public enum Category {
    TEDDY("teddy"),
    CAT("cat"),
    DOG("dog"),
    CAR("car"),
    HOUSE("house"),
    TREE("tree"),
    MUG("mug"),
    BIRD("bird");

    private static final List<ColorWord> ALL_COLORS = List.of(ColorWord.values());
    private static final List<ColorWord> TREE_COLORS =
            List.of(ColorWord.GREEN, ColorWord.YELLOW, ColorWord.ORANGE, ColorWord.RED, ColorWord.PINK);
    private static final List<Pattern> ALL_PATTERNS = List.of(Pattern.values());

    private final String word;

    Category(String word) {
        this.word = word;
    }

    public String word() {
        return word;
    }

    /** Main colours an instance may have; trees keep foliage colours so they stay recognisable. */
    public List<ColorWord> colors() {
        return this == TREE ? TREE_COLORS : ALL_COLORS;
    }

    /** Trees only get "spots", drawn as fruit; stripes on foliage would not read as a tree. */
    public List<Pattern> patterns() {
        return this == TREE ? List.of(Pattern.PLAIN, Pattern.SPOTS) : ALL_PATTERNS;
    }

    public List<Accessory> accessories() {
        return switch (this) {
            case TEDDY, CAT, DOG -> List.of(Accessory.NONE, Accessory.BOW, Accessory.HAT, Accessory.SCARF,
                    Accessory.COLLAR);
            case BIRD -> List.of(Accessory.NONE, Accessory.BOW, Accessory.HAT, Accessory.SCARF);
            case CAR -> List.of(Accessory.NONE, Accessory.ROOF_BOX, Accessory.FLAG);
            case HOUSE -> List.of(Accessory.NONE, Accessory.FLAG, Accessory.HEART);
            case TREE -> List.of(Accessory.NONE, Accessory.STAR, Accessory.BOW);
            case MUG -> List.of(Accessory.NONE, Accessory.HEART, Accessory.STAR);
        };
    }

    public static Category of(String word) {
        for (Category c : values()) {
            if (c.word.equals(word)) {
                return c;
            }
        }
        throw new IllegalArgumentException("not a category: " + word);
    }
}
