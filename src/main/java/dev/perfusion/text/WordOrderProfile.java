package dev.perfusion.text;

import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;

import java.util.List;
import java.util.Locale;

/**
 * Whether a text encoder's outputs say which object a place word belongs to. For two object words A and B, the
 * encodings of "a A on the left and a B on the right on the grass" are compared with those of the same prompt with A
 * and B swapped. A UNet reads the encodings as a set (cross-attention knows no positions), so where "left", "right"
 * and EOS encode alike after either order, and each object word alike as the first or the second object, it cannot
 * tell which object goes where. Each figure is the mean cosine over every ordered pair of the words; for scale, the
 * cosine of two different object words at the same position.
 */
public record WordOrderProfile(double left, double right, double eos, double firstVsSecond, double twoObjects, int pairs) {
    static final String PROMPT = "a %s on the left and a %s on the right on the grass";
    static final String COLOUR_PROMPT = "a %s %s on the left and a %s %s on the right on the grass";

    /** The profile over every ordered pair of {@code words}, each a single token. */
    public static WordOrderProfile measure(ClipTokenizer tokenizer, ClipTextModel text, List<String> words) {
        double left = 0, right = 0, eos = 0, firstVsSecond = 0, twoObjects = 0;
        int pairs = 0;
        try (Scope s = Scope.inference()) {
            for (String a : words) {
                for (String b : words) {
                    if (a.equals(b)) continue;
                    Swapped p = Swapped.encode(tokenizer, text, String.format(Locale.ROOT, PROMPT, a, b), String.format(Locale.ROOT, PROMPT, b, a), a, b);
                    left += p.cosine("left", "left");
                    right += p.cosine("right", "right");
                    eos += p.cosine(ClipTokenizer.END_OF_TEXT, ClipTokenizer.END_OF_TEXT);
                    firstVsSecond += p.cosine(p.firstPlace(), p.secondPlace()); // A first in one, second in the other
                    twoObjects += p.cosine(p.firstPlace(), p.firstPlace());     // A against B at the first object's place
                    pairs++;
                }
            }
        }
        return new WordOrderProfile(left / pairs, right / pairs, eos / pairs, firstVsSecond / pairs, twoObjects / pairs, pairs);
    }

    /**
     * Whether the encodings say which object a colour word colours: "a C A on the left and a D B on the right on the
     * grass" against the same prompt with the colours C and D swapped, for every ordered pair of {@code colours} and
     * each object pair (A, B). In a pair prompt the UNet must paint each colour on its own object; if neither the
     * colour word (as the first or the second object's) nor the noun after it (after either colour) nor EOS encodes
     * differently when the colours trade objects, the set of encodings it reads is nearly the same for both pictures.
     */
    public static ColourBinding measureColours(ClipTokenizer tokenizer, ClipTextModel text, List<String> colours, List<List<String>> objectPairs) {
        double noun = 0, colourFirstVsSecond = 0, eos = 0, twoColours = 0;
        int pairs = 0;
        try (Scope s = Scope.inference()) {
            for (List<String> objects : objectPairs) {
                String a = objects.get(0), b = objects.get(1);
                for (String c : colours) {
                    for (String d : colours) {
                        if (c.equals(d)) continue;
                        Swapped p = Swapped.encode(tokenizer, text, String.format(Locale.ROOT, COLOUR_PROMPT, c, a, d, b),
                                String.format(Locale.ROOT, COLOUR_PROMPT, d, a, c, b), c, d);
                        noun += (p.cosine(a, a) + p.cosine(b, b)) / 2;   // each noun after its two colours
                        colourFirstVsSecond += p.cosine(p.firstPlace(), p.secondPlace()); // C colours A in one, B in the other
                        eos += p.cosine(ClipTokenizer.END_OF_TEXT, ClipTokenizer.END_OF_TEXT);
                        twoColours += p.cosine(p.firstPlace(), p.firstPlace());           // C against D on A
                        pairs++;
                    }
                }
            }
        }
        return new ColourBinding(noun / pairs, colourFirstVsSecond / pairs, eos / pairs, twoColours / pairs, pairs);
    }

    /** {@link #measureColours}'s figures: mean cosines, 1 = the same encoding whichever object the colour is on. */
    public record ColourBinding(double nounAfterEitherColour, double colourFirstVsSecond, double eos, double twoColours, int pairs) {
        public String summary() {
            return String.format(Locale.ROOT, "colour binding (\"" + COLOUR_PROMPT + "\" against C and D swapped, %d prompt pairs; cosine, "
                            + "1 = the same encoding): a noun after either colour %.3f, a colour word on the first vs the second object %.3f, "
                            + "EOS %.3f; two different colour words %.3f", "C", "A", "D", "B", pairs, nounAfterEitherColour, colourFirstVsSecond, eos, twoColours);
        }
    }

    /**
     * A prompt's encodings beside those of its twin, in which the words x (at {@code firstPlace}) and y (at
     * {@code secondPlace}) trade places; every other word stands where it stood.
     */
    private record Swapped(List<String> names, Tensor original, Tensor swapped, int firstPlace, int secondPlace) {
        static Swapped encode(ClipTokenizer tokenizer, ClipTextModel text, String prompt, String swappedPrompt, String x, String y) {
            Tensor ids = tokenizer.idsForModel(List.of(prompt, swappedPrompt));
            List<String> names = tokenizer.positionNames(Ops.toLongs(ids.select(0, 0)));
            int first = names.indexOf(x), second = names.lastIndexOf(y);
            if (first < 0 || second < 0 || first == second) {
                throw new IllegalArgumentException("'" + x + "' and '" + y + "' must each be one token of the tokenizer");
            }
            Tensor e = text.encode(ids);
            return new Swapped(names, e.select(0, 0), e.select(0, 1), first, second);
        }

        double cosine(String wordOriginal, String wordSwapped) { return cosine(names.indexOf(wordOriginal), names.indexOf(wordSwapped)); }
        double cosine(int positionOriginal, int positionSwapped) {
            return Ops.cosine(original.select(0, positionOriginal), swapped.select(0, positionSwapped));
        }
    }

    public String summary() {
        return String.format(Locale.ROOT, "word order (\"" + PROMPT + "\" against A and B swapped, %d ordered pairs; cosine, 1 = the "
                        + "same encoding): 'left' %.3f, 'right' %.3f, EOS %.3f, an object word first vs second %.3f; two different "
                        + "object words %.3f", "A", "B", pairs, left, right, eos, firstVsSecond, twoObjects);
    }
}
