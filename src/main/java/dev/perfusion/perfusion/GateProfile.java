package dev.perfusion.perfusion;

import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.text.ClipTokenizer;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * The concept gate made visible: for every token position of a prompt (BOS, each word, EOS, padding), how much its
 * encoding resembles each concept's i* (s) and how far the gate opens there at the concept's own beta and tau (g).
 * Where a concept does not show, or spills over the rest of the prompt, this says why.
 */
public record GateProfile(String prompt, List<ConceptFile> concepts, List<Position> positions) {
    /**
     * One token position: its token, s and g per concept (NaN for a concept without a gate: textual inversion), and
     * whether it is one of the concepts' words.
     */
    public record Position(int position, String token, double[] s, double[] g, boolean conceptWord) {}

    /** The profile of {@code prompt} with {@code concepts} installed at their default gates (exact combination). */
    public static GateProfile of(StableDiffusion sd, Tensor cInv, List<ConceptFile> concepts, String prompt) {
        List<AppliedConcepts.Use> uses = new ArrayList<>();
        for (ConceptFile c : concepts) uses.add(new AppliedConcepts.Use(c, c.beta(), c.tau()));
        try (Scope scope = Scope.inference();
             AppliedConcepts applied = AppliedConcepts.apply(sd, cInv, uses, ConceptGate.Orthogonalization.EXACT, false)) {
            if (applied.gate() == null) {
                throw new IllegalArgumentException(concepts.stream().map(c -> "'" + c.word() + "' (" + c.edit().kind().id + " edit)").collect(java.util.stream.Collectors.joining(", "))
                        + (concepts.size() == 1 ? " has" : " have") + " no gate, so there is no s or g to show");
            }
            // the gate's columns are the concepts that edit the layers, in order; textual inversion's has none
            int[] column = new int[concepts.size()];
            int columns = 0;
            for (int k = 0; k < concepts.size(); k++) column[k] = concepts.get(k).embeddingOnly() ? -1 : columns++;
            ClipTokenizer tokenizer = applied.tokenizer();
            long[] ids = Ops.toLongs(sd.tokenize(tokenizer, List.of(prompt), w -> {}));
            GatedEncoding gated = applied.gate().compute(applied.encode(List.of(prompt), w -> {}));
            float[] s = Ops.toFloats(gated.s()), g = Ops.toFloats(gated.gate());
            int j = concepts.size();
            List<Long> wordIds = new ArrayList<>();
            for (ConceptFile c : concepts) wordIds.add((long) tokenizer.tokenId(c.word()).orElseThrow());
            List<Position> positions = new ArrayList<>();
            List<String> tokens = tokenizer.positionNames(ids);
            for (int t = 0; t < ids.length; t++) {
                double[] st = new double[j], gt = new double[j];
                for (int k = 0; k < j; k++) {
                    st[k] = column[k] < 0 ? Double.NaN : s[t * columns + column[k]];
                    gt[k] = column[k] < 0 ? Double.NaN : g[t * columns + column[k]];
                }
                String token = tokens.get(t);
                positions.add(new Position(t, token, st, gt, !token.equals(ClipTokenizer.PADDING) && wordIds.contains(ids[t])));
            }
            return new GateProfile(prompt, List.copyOf(concepts), List.copyOf(positions));
        }
    }

    /** Whether concept {@code j} has a gate (textual inversion's has none: its s and g are NaN). */
    public boolean gated(int j) {
        return !concepts.get(j).embeddingOnly();
    }

    /** s of concept {@code j} at its word's positions (usually one). */
    public double[] atConceptWord(int j) {
        return positions.stream().filter(p -> p.conceptWord() && p.token().equals(concepts.get(j).word())).mapToDouble(p -> p.s()[j]).toArray();
    }

    /** s of concept {@code j} at every other position (BOS, other words, EOS, padding), sorted. */
    public double[] elsewhere(int j) {
        return positions.stream().filter(p -> !p.conceptWord()).mapToDouble(p -> p.s()[j]).sorted().toArray();
    }

    /** Concept {@code concept}'s s and g at another concept's word {@code atWord}: how far its edit reaches that object. */
    public record Crossing(String concept, String atWord, int position, double s, double g) {}

    /** Every concept's s and g at every other concept's word in the prompt. */
    public List<Crossing> crossings() {
        List<Crossing> out = new ArrayList<>();
        for (int j = 0; j < concepts.size(); j++) {
            if (!gated(j)) continue;
            for (Position p : positions) {
                if (p.conceptWord() && !p.token().equals(concepts.get(j).word())) {
                    out.add(new Crossing(concepts.get(j).word(), p.token(), p.position(), p.s()[j], p.g()[j]));
                }
            }
        }
        return out;
    }

    /** A line per concept: s at its word, and the largest and median s at every other position. */
    public String summary(int j) {
        return summary(List.of(this), j);
    }

    /** {@link #summary(int)} over several prompts' profiles with the same concepts, their positions pooled. */
    public static String summary(List<GateProfile> profiles, int j) {
        if (!profiles.get(0).gated(j)) {
            return profiles.get(0).concepts().get(j).word() + ": no gate (textual inversion: only the word's embedding is learned)";
        }
        double[] at = profiles.stream().flatMapToDouble(p -> Arrays.stream(p.atConceptWord(j))).toArray();
        double[] other = profiles.stream().flatMapToDouble(p -> Arrays.stream(p.elsewhere(j))).sorted().toArray();
        return String.format(Locale.ROOT, "%s: s at the concept word %s; elsewhere (%d positions) largest %.3f, median %.3f",
                profiles.get(0).concepts().get(j).word(), Arrays.toString(Arrays.stream(at).map(v -> Math.round(v * 1000) / 1000.0).toArray()),
                other.length, other.length == 0 ? Double.NaN : other[other.length - 1], SupercategoryProfile.median(other));
    }
}
