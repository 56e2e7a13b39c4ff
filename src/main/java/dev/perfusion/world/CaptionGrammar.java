package dev.perfusion.world;

import java.util.List;
import java.util.SplittableRandom;

/**
 * Caption grammar over a closed vocabulary. Captions always name the primary object's colour, class, placement
 * and scene (size unless medium), and for pairs the second object's colour and class, in varied word orders:
 *
 * <pre>
 *   [prefix] a [size] COLOUR CLASS SCENE PLACEMENT        a small blue mug in the snow on the left
 *   a [size] COLOUR CLASS PLACEMENT SCENE                 a red car on the left on the beach
 *   there is a [size] COLOUR CLASS PLACEMENT SCENE        there is a large cat in the middle at night
 *   [prefix] a COLOUR CLASS next to a COLOUR CLASS SCENE  a red car next to a green tree at night
 *   [prefix] a ... PLACEMENT and a ... PLACEMENT SCENE    a cat on the left and a dog on the right in a room
 * </pre>
 *
 * Templates carry {@link #SLOT} where the primary object's "COLOUR CLASS" goes, so personalization prompts reuse
 * the same sentence shapes with a concept phrase instead.
 */
public final class CaptionGrammar {
    private CaptionGrammar() {}

    public static final String SLOT = "{}";
    static final List<String> PREFIXES = List.of("a photo of", "a picture of", "an image of");
    static final List<String> FUNCTION_WORDS = List.of("a", "an", "there", "is", "next", "to", "and");

    /** Caption that names the primary object by colour and class. */
    public static String caption(Labels labels, SplittableRandom rng) {
        return fill(template(labels, rng), noun(labels.instance()));
    }

    /**
     * A caption that may leave things out (the colour, the scene, the placement) but never says anything false, so
     * that a model trained on both kinds follows short prompts such as "a photo of a dog" as well as full ones. With
     * {@code details} above 0 it also names, each with that probability, the object's pattern and its accessory
     * ("a spotted white dog with a red scarf"): words a UNet can then be steered by, so that a concept that learns
     * them has something to draw them with. Pairs are always captioned in full.
     */
    public static String looseCaption(Labels labels, SplittableRandom rng, double details) {
        return looseCaption(labels, rng, details, false);
    }

    /**
     * {@link #looseCaption(Labels, SplittableRandom, double)}, where {@code unnamedPlacementMiddle} leaves out only the
     * middle placement (as captions leave out only the medium size), so that a caption without a place means the middle;
     * the same draws either way, so the captions of other placements are those of recipes before it.
     */
    public static String looseCaption(Labels labels, SplittableRandom rng, double details, boolean unnamedPlacementMiddle) {
        if (labels.spec().second() != null) return caption(labels, rng);
        Placed first = labels.spec().primary();
        boolean colour = rng.nextDouble() >= 0.35;
        String scene = rng.nextDouble() < 0.7 ? labels.scene().phrase() : "";
        boolean leftOut = rng.nextDouble() >= 0.5 && (!unnamedPlacementMiddle || first.placement() == Placement.CENTER);
        String where = leftOut ? "" : first.placement().phrase();
        String tail = rng.nextBoolean() ? join(scene, where) : join(where, scene);
        String prefix = rng.nextBoolean() ? "" : prefix(rng);
        Instance inst = labels.instance();
        // drawn last, and only when asked for, so that captions without details are those of recipes before them
        String pattern = details > 0 && rng.nextDouble() < details ? inst.pattern().adjective().orElse("") : "";
        String accessory = details > 0 && rng.nextDouble() < details
                ? inst.accessory().phrase().map(a -> join("with a", inst.accessoryColor().word(), a)).orElse("") : "";
        String np = join("a", sizeWord(first.size()), pattern, colour ? labels.color().word() : "", labels.category().word(), accessory);
        return fill(join(prefix, np, tail), "");
    }

    /** Caption for a personalization image: the concept phrase replaces the primary object's colour and class. */
    public static String caption(Labels labels, String concept, SplittableRandom rng) {
        return fill(template(labels, rng), concept);
    }

    /** A caption shape for these labels with {@link #SLOT} in place of the primary object's "COLOUR CLASS". */
    public static String template(Labels labels, SplittableRandom rng) {
        Placed first = labels.spec().primary();
        String np = "a " + sizeWord(first.size()) + SLOT;
        String scene = labels.scene().phrase();
        Placed second = labels.spec().second();
        if (second == null) {
            String where = first.placement().phrase();
            return switch (rng.nextInt(4)) {
                case 0 -> join(np, scene, where);
                case 1 -> join(np, where, scene);
                case 2 -> join(prefix(rng), np, scene, where);
                default -> join("there is", np, where, scene);
            };
        }
        String np2 = "a " + sizeWord(second.size()) + noun(second.instance());
        String sideBySide = join(np, first.placement().phrase(), "and", np2, second.placement().phrase(), scene);
        return switch (rng.nextInt(4)) {
            case 0 -> join(np, "next to", np2, scene);
            case 1 -> join(prefix(rng), np, "next to", np2, scene);
            case 2 -> sideBySide;
            default -> join(prefix(rng), sideBySide);
        };
    }

    /** Puts a phrase into a template's slot and fixes "a"/"an" before it. */
    public static String fill(String template, String phrase) {
        String[] words = template.replace(SLOT, phrase).trim().split(" +");
        for (int i = 0; i + 1 < words.length; i++) {
            if (words[i].equals("a") || words[i].equals("an")) {
                words[i] = "aeiou".indexOf(words[i + 1].charAt(0)) >= 0 ? "an" : "a";
            }
        }
        return String.join(" ", words);
    }

    /** "COLOUR CLASS", e.g. "red car". */
    public static String noun(Instance inst) {
        return inst.color().word() + " " + inst.category().word();
    }

    private static String sizeWord(Size size) {
        return size.word().map(w -> w + " ").orElse("");
    }

    private static String prefix(SplittableRandom rng) {
        return PREFIXES.get(rng.nextInt(PREFIXES.size()));
    }

    private static String join(String... parts) {
        return String.join(" ", parts);
    }
}
