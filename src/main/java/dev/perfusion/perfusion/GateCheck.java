package dev.perfusion.perfusion;

import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.text.ClipTokenizer;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * After training: does the concept's gate stay shut on an object named after its word? The causal text encoder
 * carries the word into every later position, and where training moved the word embedding away from the
 * supercategory's, the next noun ("a my-teddy next to a car") can come to resemble i*: the edit then draws the concept
 * in that object's place (on the 128x128 candidate R17, s 0.79 at "car" after the demo's 400 steps; 0.04 with the
 * embedding kept at teddy's; docs/model-history.md, "Why R17's demo draws two teddies").
 *
 * @param atWord s at the concept's own word in the probe prompt where another position came highest
 * @param prompt that probe prompt
 * @param token  the position with the highest s other than the word
 * @param s      its s
 * @param g      its gate value at the concept's default beta and tau
 */
public record GateCheck(ConceptFile concept, double atWord, String prompt, String token, double s, double g, EmbeddingDrift drift) {
    /** Objects named after the word in the probes: the first two that are single tokens other than the supercategory. */
    static final List<String> OBJECTS = List.of("car", "dog", "cat", "tree", "house", "ball");
    /** A gate this far open on another word (a quarter of the edit) is worth a warning. */
    public static final double OPEN = 0.25;

    /** The check of a concept on the model it was trained for; empty for one without Perfusion's gate (the baselines). */
    public static Optional<GateCheck> of(StableDiffusion sd, Tensor cInv, ConceptFile concept) {
        if (concept.edit().kind() != ProjectionEdit.Kind.GATED_RANK_ONE) return Optional.empty();
        GateProfile.Position highest = null;
        String highestIn = null;
        double atWord = Double.NaN;
        for (String prompt : probes(sd.tokenizer, concept)) {
            GateProfile profile = GateProfile.of(sd, cInv, List.of(concept), prompt);
            for (GateProfile.Position p : profile.positions()) {
                if (p.conceptWord() || (highest != null && p.s()[0] <= highest.s()[0])) continue;
                highest = p;
                highestIn = prompt;
                atWord = Arrays.stream(profile.atConceptWord(0)).max().orElse(Double.NaN);
            }
        }
        if (highest == null) return Optional.empty();
        EmbeddingDrift drift = EmbeddingDrift.of(sd.textEncoder, sd.tokenizer, List.of(concept)).get(0);
        return Optional.of(new GateCheck(concept, atWord, highestIn, highest.token(), highest.s()[0], highest.g()[0], drift));
    }

    /** "a WORD next to a OBJECT" for the first two objects this tokenizer has as single words. */
    static List<String> probes(ClipTokenizer tokenizer, ConceptFile concept) {
        List<String> prompts = new ArrayList<>();
        for (String object : OBJECTS) {
            if (prompts.size() == 2) break;
            if (!object.equals(concept.supercategory()) && tokenizer.tokensOf(object).size() == 1) {
                prompts.add("a " + concept.word() + " next to a " + object);
            }
        }
        return prompts;
    }

    /** Whether the gate opens on another word far enough to draw the concept there. */
    public boolean opens() {
        return g >= OPEN;
    }

    public String summary() {
        String where = String.format(Locale.ROOT, "'%s' of \"%s\" (s %.3f at beta %.2f)", token, prompt, s, concept.beta());
        if (!opens()) {
            return String.format(Locale.ROOT, "gate check: s %.3f at %s; at most %s elsewhere, where the gate is %.0f%% open: it stays shut off the word",
                    atWord, concept.word(), where, 100 * g);
        }
        return String.format(Locale.ROOT, "gate check: the gate is %.0f%% open at %s: that much of %s's edit reaches that object, which may "
                        + "then be drawn as %s. Its word embedding moved from %s's (cos %.3f, norm %.3f against %.3f) and the text encoder "
                        + "carries it into the words after it: generate with a higher --beta, or train with a smaller --embedding-lr (0 keeps %s's)",
                100 * g, where, concept.word(), concept.word(), concept.supercategory(), drift.cosToSupercategory(), drift.norm(),
                drift.supercategoryNorm(), concept.supercategory());
    }
}
