package dev.perfusion.perfusion;

import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.text.ClipTextModel;
import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.util.Progress;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * The s profile of a text encoder before any concept is learned, the cheap early signal of whether the gate can stay
 * shut away from the concept word. For each supercategory word w: i* = the mean encoding of w over the
 * concept-training templates (as training starts a concept, i* = i_super), and at every position of the evaluation
 * prompts filled with w (BOS, w, the other words, EOS, padding) s = e^T C^-1 i* / (i*^T C^-1 i*). Where s stays low
 * away from w, a concept's edit stays at its word; where it is high, e⊥ removes the concept across the prompt.
 */
public record SupercategoryProfile(List<Position> positions, InputCovariance.Conditioning conditioning) {
    /** One token position of one prompt: s against the i* of the word the prompt was filled with. */
    public record Position(String word, String prompt, int position, String token, double s, boolean atWord, Kind kind) {}

    /** Where a position lies: BOS, a word before the supercategory word, the word, a word after it, EOS, padding. */
    public enum Kind { BOS, BEFORE, WORD, AFTER, EOS, PADDING }

    /**
     * The profile of {@code text} for each of {@code words}, with {@code templates} ("a photo of a {}", ...) for i*
     * and {@code prompts} (templates with one "{}") to measure on; C from {@code captions} (the model's corpus).
     */
    public static SupercategoryProfile measure(ClipTokenizer tokenizer, ClipTextModel text, List<String> captions, List<String> words,
                                               List<String> templates, List<String> prompts, Progress progress) {
        InputCovariance covariance = InputCovariance.of(text.config().hiddenSize(), batch -> text.encode(tokenizer.idsForModel(batch)), captions, progress);
        List<Position> out = new ArrayList<>();
        try (Scope s = Scope.inference()) {
            Tensor cInv = covariance.inverse();
            for (String word : words) {
                long id = AppliedConcepts.singleToken(tokenizer, word);
                Tensor iStar = meanAt(text, tokenizer, templates.stream().map(t -> t.replace("{}", word)).toList(), id);   // [D]
                // s as the concept gate computes it, with i* = i_super (the gate's beta and tau do not enter s)
                ConceptGate gate = ConceptGate.single(cInv, new Concept(iStar, Concept.GENERATION_BETA, Concept.GENERATION_TAU));
                List<String> filled = prompts.stream().map(p -> p.replace("{}", word)).toList();
                Tensor ids = tokenizer.idsForModel(filled);
                float[] sValues = Ops.toFloats(gate.compute(text.encode(ids)).s());                                       // [P, L, 1]
                long[] idValues = Ops.toLongs(ids);
                int length = tokenizer.maxLength();
                for (int p = 0; p < filled.size(); p++) {
                    long[] promptIds = Arrays.copyOfRange(idValues, p * length, (p + 1) * length);
                    List<String> tokens = tokenizer.positionNames(promptIds);
                    boolean seen = false;
                    for (int t = 0; t < length; t++) {
                        String name = tokens.get(t);
                        boolean padding = name.equals(ClipTokenizer.PADDING), atWord = !padding && promptIds[t] == id;
                        seen |= atWord;
                        Kind kind = padding ? Kind.PADDING : t == 0 ? Kind.BOS : promptIds[t] == tokenizer.eosId() ? Kind.EOS
                                : atWord ? Kind.WORD : seen ? Kind.AFTER : Kind.BEFORE;
                        out.add(new Position(word, filled.get(p), t, name, sValues[p * length + t], atWord, kind));
                    }
                }
            }
        }
        return new SupercategoryProfile(List.copyOf(out), covariance.conditioning(text.textModel().finalLayerNorm.weight.t()));
    }

    /** s at every position but the word's own, sorted. */
    public double[] elsewhere() {
        return positions.stream().filter(p -> !p.atWord()).mapToDouble(Position::s).sorted().toArray();
    }

    /** s at the word's own positions (1 on average over the templates, by construction of i*), sorted. */
    public double[] atWord() {
        return positions.stream().filter(Position::atWord).mapToDouble(Position::s).sorted().toArray();
    }

    public static double median(double[] sorted) {
        int n = sorted.length;
        return n == 0 ? Double.NaN : n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    /** The figures to compare: the largest and median s away from the word, and at the word. */
    public String summary() {
        double[] other = elsewhere(), at = atWord();
        long over = Arrays.stream(other).filter(v -> v > 0.4).count();
        double[] text = positions.stream().filter(p -> !p.atWord() && p.kind() != Kind.PADDING).mapToDouble(Position::s).sorted().toArray();
        return String.format(Locale.ROOT, "s away from the supercategory word (%d positions): largest %.3f, median %.3f (%.3f without the "
                        + "padding), %.1f%% above 0.4; at the word: median %.3f (%.3f .. %.3f); %s",
                other.length, other[other.length - 1], median(other), median(text), 100.0 * over / other.length, median(at), at[0], at[at.length - 1],
                conditioning.summary());
    }

    /** The largest and median s at each kind of position (the word's own included, for reference). */
    public List<String> perKind() {
        List<String> lines = new ArrayList<>();
        for (Kind k : Kind.values()) {
            double[] v = positions.stream().filter(p -> p.kind() == k).mapToDouble(Position::s).sorted().toArray();
            if (v.length > 0) {
                lines.add(String.format(Locale.ROOT, "%-8s %5d positions: largest %.3f, median %.3f", k.name().toLowerCase(Locale.ROOT), v.length,
                        v[v.length - 1], median(v)));
            }
        }
        return lines;
    }

    /** The {@code n} positions away from the word with the largest s, largest first. */
    public List<Position> highest(int n) {
        return positions.stream().filter(p -> !p.atWord()).sorted(java.util.Comparator.comparingDouble(Position::s).reversed()).limit(n).toList();
    }

    /** The same per word. */
    public List<String> perWord() {
        List<String> lines = new ArrayList<>();
        for (String w : positions.stream().map(Position::word).distinct().toList()) {
            double[] other = positions.stream().filter(p -> p.word().equals(w) && !p.atWord()).mapToDouble(Position::s).sorted().toArray();
            double[] at = positions.stream().filter(p -> p.word().equals(w) && p.atWord()).mapToDouble(Position::s).sorted().toArray();
            lines.add(String.format(Locale.ROOT, "%-8s elsewhere largest %.3f, median %.3f; at the word median %.3f",
                    w, other[other.length - 1], median(other), median(at)));
        }
        return lines;
    }

    /** The mean encoding over {@code prompts} at the positions of {@code token}. */
    private static Tensor meanAt(ClipTextModel text, ClipTokenizer tokenizer, List<String> prompts, long token) {
        Tensor ids = tokenizer.idsForModel(prompts);
        Tensor at = ids.eq(new Scalar(token)).to(torch.ScalarType.Float).unsqueeze(-1);
        return Ops.div(text.encode(ids).mul(at).sum(new long[] {0, 1}, false, new org.bytedeco.pytorch.ScalarTypeOptional()), Ops.item(at.sum()));
    }
}
