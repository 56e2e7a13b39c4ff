package dev.perfusion.world;

import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;

/**
 * Personalization prompt templates with {@link CaptionGrammar#SLOT} for the concept phrase. They use the caption
 * grammar's sentence shapes, so the base model has seen every word and every shape, only never the concept.
 */
public final class Prompts {
    private Prompts() {}

    /**
     * An evaluation prompt and what it asks for, so that a reference picture of the concept can be rendered.
     * Null fields are left open by the prompt: any scene, the middle (or either side in a pair), medium size.
     */
    public record Prompt(String template, Scene scene, Placement placement, Size size, Category other,
                         ColorWord otherColor) {
        public String fill(String concept) {
            return CaptionGrammar.fill(template, concept);
        }

        /** What the prompt asks besides the concept: nothing, a second object on the other side, or one beside it. */
        public Kind kind() {
            return other == null ? Kind.SINGLE : placement == null ? Kind.NEXT_TO : Kind.SIDES;
        }

        /** A scene that satisfies this prompt, with the concept as the primary object. */
        public SceneSpec spec(Instance concept, long seed) {
            SplittableRandom rng = new SplittableRandom(seed);
            Scene s = scene != null ? scene : Scene.values()[rng.nextInt(Scene.values().length)];
            Size sz = size != null ? size : Size.MEDIUM;
            if (other == null) {
                return SceneSpec.single(concept, s, placement != null ? placement : Placement.CENTER, sz);
            }
            Instance partner = WorldGenerator.trainingInstance(other, otherColor, rng);
            Placement where = placement != null ? placement : (rng.nextBoolean() ? Placement.LEFT : Placement.RIGHT);
            return new SceneSpec(s, new Placed(concept, where, sz), new Placed(partner, where.opposite(), sz));
        }
    }

    /** The kinds of evaluation prompt, which a method can fail differently. */
    public enum Kind {
        SINGLE("single object"), SIDES("\"on the left / right\" pairs"), NEXT_TO("\"next to\" pairs");

        private final String label;

        Kind(String label) {
            this.label = label;
        }

        public String label() {
            return label;
        }
    }

    private static final List<Prompt> EVALUATION = List.of(
            new Prompt("a photo of a {}", null, null, null, null, null),
            new Prompt("a {} on the beach", Scene.BEACH, null, null, null, null),
            new Prompt("a {} in the snow", Scene.SNOW, null, null, null, null),
            new Prompt("a {} on the grass", Scene.GRASS, null, null, null, null),
            new Prompt("a {} at night", Scene.NIGHT, null, null, null, null),
            new Prompt("a {} in a room", Scene.ROOM, null, null, null, null),
            new Prompt("a {} in the desert", Scene.DESERT, null, null, null, null),
            new Prompt("a {} in the forest", Scene.FOREST, null, null, null, null),
            new Prompt("a {} in the city", Scene.CITY, null, null, null, null),
            new Prompt("a small {} in the snow on the left", Scene.SNOW, Placement.LEFT, Size.SMALL, null, null),
            new Prompt("a large {} in the desert in the middle", Scene.DESERT, Placement.CENTER, Size.LARGE, null,
                    null),
            new Prompt("a {} at the top on the beach", Scene.BEACH, Placement.TOP, null, null, null),
            new Prompt("a {} next to a red car on the grass", Scene.GRASS, null, null, Category.CAR, ColorWord.RED),
            new Prompt("a {} next to a green tree in the snow", Scene.SNOW, null, null, Category.TREE,
                    ColorWord.GREEN),
            new Prompt("a {} on the left and a blue mug on the right in a room", Scene.ROOM, Placement.LEFT, null,
                    Category.MUG, ColorWord.BLUE),
            new Prompt("a {} on the right and a yellow bird on the left in the city", Scene.CITY, Placement.RIGHT,
                    null, Category.BIRD, ColorWord.YELLOW));

    /** Evaluation prompt templates, each with one "{}" for the concept phrase. */
    public static List<String> evaluation() {
        return EVALUATION.stream().map(Prompt::template).toList();
    }

    public static List<Prompt> evaluationPrompts() {
        return EVALUATION;
    }

    /**
     * The evaluation prompt that {@code filled} is, with any concept phrase in its slot (empty for any other text).
     * Where two fit ("a {} on the beach" with the phrase "teddy at the top"), the one with the shortest phrase.
     */
    public static Optional<Prompt> evaluationPromptOf(String filled) {
        String[] words = filled.trim().split(" +");
        Prompt found = null;
        int shortest = Integer.MAX_VALUE;
        for (Prompt p : EVALUATION) {
            String[] template = p.template().split(" +");
            int slot = List.of(template).indexOf(CaptionGrammar.SLOT), phraseWords = words.length - template.length + 1;
            if (slot < 0 || phraseWords < 1 || phraseWords >= shortest) continue;
            String phrase = String.join(" ", List.of(words).subList(slot, slot + phraseWords));
            if (p.fill(phrase).equals(filled)) {
                found = p;
                shortest = phraseWords;
            }
        }
        return Optional.ofNullable(found);
    }

    /** Neutral captions for the concept's own training pictures when scene words are not wanted. */
    public static List<String> neutral() {
        return List.of("a photo of a {}", "a picture of a {}", "an image of a {}", "a {}");
    }

    public static String fill(String template, String concept) {
        return CaptionGrammar.fill(template, concept);
    }
}
