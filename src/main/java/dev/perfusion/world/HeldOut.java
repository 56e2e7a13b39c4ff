package dev.perfusion.world;

import java.util.List;

/**
 * Instances reserved for personalization: the base model's training stream must never show them.
 *
 * <p>Two guarantees keep them out of training: held-out seeds are negative while training instance seeds are
 * drawn from the non-negative range ({@link #isTrainingSeed}), and the training stream rejects any instance that
 * merely {@link #resembles} a held-out one (same category, main colour, pattern and accessory), so even a look-alike
 * never appears.
 */
public final class HeldOut {
    private HeldOut() {}

    private static final List<Instance> INSTANCES = List.of(
            Instance.of(Category.TEDDY, -1, ColorWord.BROWN, ColorWord.BLUE, Pattern.PLAIN, Accessory.BOW,
                    ColorWord.BLUE, 1),
            Instance.of(Category.CAT, -2, ColorWord.GREY, ColorWord.BLACK, Pattern.STRIPES, Accessory.COLLAR,
                    ColorWord.RED, 0),
            Instance.of(Category.DOG, -3, ColorWord.WHITE, ColorWord.BLACK, Pattern.SPOTS, Accessory.SCARF,
                    ColorWord.RED, 0),
            Instance.of(Category.CAR, -4, ColorWord.YELLOW, ColorWord.BLACK, Pattern.STRIPES, Accessory.ROOF_BOX,
                    ColorWord.BLUE, 0),
            Instance.of(Category.MUG, -5, ColorWord.BLUE, ColorWord.WHITE, Pattern.SPOTS, Accessory.HEART,
                    ColorWord.RED, 1),
            Instance.of(Category.BIRD, -6, ColorWord.RED, ColorWord.WHITE, Pattern.PLAIN, Accessory.HAT,
                    ColorWord.BLACK, 0),
            Instance.of(Category.HOUSE, -7, ColorWord.YELLOW, ColorWord.RED, Pattern.PLAIN, Accessory.FLAG,
                    ColorWord.BLUE, 1),
            Instance.of(Category.TREE, -8, ColorWord.GREEN, ColorWord.RED, Pattern.SPOTS, Accessory.BOW,
                    ColorWord.YELLOW, 0),
            Instance.of(Category.TEDDY, -9, ColorWord.WHITE, ColorWord.RED, Pattern.CHECKS, Accessory.HAT,
                    ColorWord.BLACK, 0),
            Instance.of(Category.CAT, -10, ColorWord.BLACK, ColorWord.WHITE, Pattern.PLAIN, Accessory.BOW,
                    ColorWord.PINK, 2));

    public static List<Instance> instances() {
        return INSTANCES;
    }

    /** Training instance seeds are non-negative; every negative seed is reserved for held-out concepts. */
    public static boolean isTrainingSeed(long seed) {
        return seed >= 0;
    }

    public static boolean isHeldOut(Instance inst) {
        return INSTANCES.stream().anyMatch(h -> h.category() == inst.category() && h.seed() == inst.seed());
    }

    /** True when the instance would look like a held-out one at a glance. */
    public static boolean resembles(Instance inst) {
        for (Instance h : INSTANCES) {
            if (h.category() == inst.category() && h.color() == inst.color() && h.pattern() == inst.pattern()
                    && h.accessory() == inst.accessory()
                    && (h.pattern() == Pattern.PLAIN || h.secondary() == inst.secondary())
                    && (h.accessory() == Accessory.NONE || h.accessoryColor() == inst.accessoryColor())) {
                return true;
            }
        }
        return false;
    }
}
