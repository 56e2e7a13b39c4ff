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

    /** The profile over every ordered pair of {@code words}, each a single token. */
    public static WordOrderProfile measure(ClipTokenizer tokenizer, ClipTextModel text, List<String> words) {
        double left = 0, right = 0, eos = 0, firstVsSecond = 0, twoObjects = 0;
        int pairs = 0;
        try (Scope s = Scope.inference()) {
            for (String a : words) {
                for (String b : words) {
                    if (a.equals(b)) continue;
                    List<String> prompts = List.of(String.format(Locale.ROOT, PROMPT, a, b), String.format(Locale.ROOT, PROMPT, b, a));
                    Tensor ids = tokenizer.idsForModel(prompts);
                    List<String> names = tokenizer.positionNames(Ops.toLongs(ids.select(0, 0)));
                    int first = names.indexOf(a), second = names.lastIndexOf(b);
                    if (first < 0 || second < 0 || first == second) {
                        throw new IllegalArgumentException("'" + a + "' and '" + b + "' must each be one token of the tokenizer");
                    }
                    Tensor e = text.encode(ids), original = e.select(0, 0), swapped = e.select(0, 1);
                    left += cosine(original, swapped, names.indexOf("left"), names.indexOf("left"));
                    right += cosine(original, swapped, names.indexOf("right"), names.indexOf("right"));
                    eos += cosine(original, swapped, names.indexOf(ClipTokenizer.END_OF_TEXT), names.indexOf(ClipTokenizer.END_OF_TEXT));
                    firstVsSecond += cosine(original, swapped, first, second); // A first in one, second in the other
                    twoObjects += cosine(original, swapped, first, first);     // A against B at the first object's place
                    pairs++;
                }
            }
        }
        return new WordOrderProfile(left / pairs, right / pairs, eos / pairs, firstVsSecond / pairs, twoObjects / pairs, pairs);
    }

    private static double cosine(Tensor a, Tensor b, int positionA, int positionB) {
        return Ops.cosine(a.select(0, positionA), b.select(0, positionB));
    }

    public String summary() {
        return String.format(Locale.ROOT, "word order (\"" + PROMPT + "\" against A and B swapped, %d ordered pairs; cosine, 1 = the "
                        + "same encoding): 'left' %.3f, 'right' %.3f, EOS %.3f, an object word first vs second %.3f; two different "
                        + "object words %.3f", "A", "B", pairs, left, right, eos, firstVsSecond, twoObjects);
    }
}
