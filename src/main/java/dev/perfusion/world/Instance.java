package dev.perfusion.world;

import java.util.List;
import java.util.Objects;
import java.util.SplittableRandom;

/**
 * One particular object: everything that makes it recognisable across poses, sizes and scenes.
 * Fully determined by (category, seed), so an instance id names it reproducibly.
 *
 * @param rgb          exact drawn main colour, always nearest to {@code color}
 * @param secondary    pattern colour (and patches, roof, fruit), contrasting with the main colour
 * @param variant      category-specific shape variant in 0..2 (car body type, tree shape, patched ear...)
 * @param width        horizontal proportion factor, about 0.85..1
 * @param height       vertical proportion factor, about 0.85..1
 * @param head         head / detail scale factor, about 0.88..1.12
 */
public record Instance(Category category, long seed, ColorWord color, int rgb, ColorWord secondary, int secondaryRgb,
                       Pattern pattern, Accessory accessory, ColorWord accessoryColor, int variant,
                       double width, double height, double head) {

    public Instance {
        Objects.requireNonNull(category);
        Objects.requireNonNull(color);
        Objects.requireNonNull(secondary);
        Objects.requireNonNull(pattern);
        Objects.requireNonNull(accessory);
        Objects.requireNonNull(accessoryColor);
        if (ColorWord.nearest(rgb) != color) {
            throw new IllegalArgumentException("rgb " + Integer.toHexString(rgb) + " does not read as " + color);
        }
    }

    /** A random instance of the category; the same (category, seed) always gives the same instance. */
    public static Instance random(Category category, long seed) {
        SplittableRandom r = rng(category, seed);
        ColorWord color = pick(r, category.colors());
        List<ColorWord> contrast = color.contrasting();
        ColorWord secondary = pick(r, contrast);
        // Plain bodies are most common so that the colour word dominates the picture.
        Pattern pattern = r.nextDouble() < 0.4 ? Pattern.PLAIN : pick(r, category.patterns());
        Accessory accessory = pick(r, category.accessories());
        ColorWord accessoryColor = pick(r, contrast);
        return new Instance(category, seed, color, color.jitter(r), secondary, secondary.jitter(r), pattern,
                accessory, accessoryColor, r.nextInt(3), 0.85 + 0.15 * r.nextDouble(),
                0.85 + 0.15 * r.nextDouble(), 0.88 + 0.24 * r.nextDouble());
    }

    /** A hand-chosen instance; shades and proportions still come from the seed. */
    public static Instance of(Category category, long seed, ColorWord color, ColorWord secondary, Pattern pattern,
                              Accessory accessory, ColorWord accessoryColor, int variant) {
        if (!category.accessories().contains(accessory) || !category.patterns().contains(pattern)) {
            throw new IllegalArgumentException(category + " cannot have " + pattern + "/" + accessory);
        }
        Instance base = random(category, seed);
        SplittableRandom r = rng(category, ~seed);
        return new Instance(category, seed, color, color.jitter(r), secondary, secondary.jitter(r), pattern,
                accessory, accessoryColor, variant, base.width, base.height, base.head);
    }

    /**
     * The same object without each of its details in turn: without its accessory, and with a plain body; none for a
     * plain object without one. A picture closer to the instance than to all of these shows what sets it apart.
     */
    public List<Instance> withoutEachDetail() {
        List<Instance> lookAlikes = new java.util.ArrayList<>();
        if (accessory != Accessory.NONE) lookAlikes.add(withoutAccessory());
        if (pattern != Pattern.PLAIN) lookAlikes.add(with(Pattern.PLAIN, accessory));
        return List.copyOf(lookAlikes);
    }

    /** This object, every shade and proportion kept, without its accessory. */
    public Instance withoutAccessory() {
        return with(pattern, Accessory.NONE);
    }

    /** This object, every shade and proportion kept, with another pattern and accessory. */
    private Instance with(Pattern otherPattern, Accessory otherAccessory) {
        return new Instance(category, seed, color, rgb, secondary, secondaryRgb, otherPattern, otherAccessory, accessoryColor, variant, width, height, head);
    }

    /** Stable, human-readable id: category word and seed ("teddy-42"; held-out seeds are negative: "teddy-h3"). */
    public String id() {
        return category.word() + "-" + (seed < 0 ? "h" + Long.toUnsignedString(-seed) : Long.toString(seed));
    }

    private static SplittableRandom rng(Category category, long seed) {
        // Mixing the ordinal keeps "teddy seed 7" and "cat seed 7" unrelated.
        return new SplittableRandom(seed * 0x9E3779B97F4A7C15L + category.ordinal() * 0xBF58476D1CE4E5B9L);
    }

    private static <T> T pick(SplittableRandom r, List<T> options) {
        return options.get(r.nextInt(options.size()));
    }
}
