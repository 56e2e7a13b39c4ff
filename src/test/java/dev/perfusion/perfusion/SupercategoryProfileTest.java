package dev.perfusion.perfusion;

import dev.perfusion.nn.Weights;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.text.BpeLearner;
import dev.perfusion.text.ClipTextConfig;
import dev.perfusion.text.ClipTextModel;
import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.util.Progress;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class SupercategoryProfileTest {
    private static final List<String> WORDS = List.of("a", "photo", "of", "the", "teddy", "cat", "on", "beach", "grass", "red", "big");

    private static ClipTokenizer tokenizer() {
        Map<String, Long> counts = new LinkedHashMap<>();
        for (String w : WORDS) counts.put(w, 10L);
        return BpeLearner.learn(counts, 12, 1000);
    }

    private static List<String> captions(int n) {
        SplittableRandom rng = new SplittableRandom(3);
        List<String> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            StringBuilder c = new StringBuilder();
            for (int k = 0, len = 2 + rng.nextInt(6); k < len; k++) c.append(k > 0 ? " " : "").append(WORDS.get(rng.nextInt(WORDS.size())));
            out.add(c.toString());
        }
        return out;
    }

    /**
     * A prompt that is the one template: the word's encoding there is i* itself, so s = 1 at the word; every other
     * position is e^T C^-1 i* / (i*^T C^-1 i*) as computed here from the same C; BOS, words, EOS and padding all count.
     */
    @Test
    void sIsOneAtTheTemplatesWordAndTheGateFormulaElsewhere() {
        ClipTokenizer tokenizer = tokenizer();
        ClipTextModel text = ClipTextModel.create(new ClipTextConfig(tokenizer.vocabSize(), 16, 32, 2, 2, 12, "quick_gelu", 1e-5,
                tokenizer.bosId(), tokenizer.eosId(), tokenizer.padId(), 16));
        Weights.initRandom(text, 5);
        List<String> captions = captions(200);
        SupercategoryProfile p = SupercategoryProfile.measure(tokenizer, text, captions, List.of("teddy"), List.of("a photo of a {}"),
                List.of("a photo of a {}", "a {} on the beach"), Progress.NONE);
        assertEquals(2 * 12, p.positions().size(), "every position of both prompts, padding included");
        assertEquals(2, p.atWord().length);
        assertEquals(1.0, p.positions().get(5).s(), 1e-4, "the template's own word");
        assertTrue(p.positions().get(5).atWord());
        assertEquals(List.of(SupercategoryProfile.Kind.BOS, SupercategoryProfile.Kind.BEFORE, SupercategoryProfile.Kind.WORD,
                SupercategoryProfile.Kind.AFTER, SupercategoryProfile.Kind.AFTER, SupercategoryProfile.Kind.AFTER, SupercategoryProfile.Kind.EOS,
                SupercategoryProfile.Kind.PADDING), p.positions().subList(12, 20).stream().map(SupercategoryProfile.Position::kind).toList());
        assertEquals(22, p.elsewhere().length);
        assertEquals("<|startoftext|>", p.positions().get(0).token());
        assertEquals("<|endoftext|>", p.positions().get(6).token());
        assertEquals("<pad>", p.positions().get(7).token());

        try (Scope s = Scope.inference()) {
            InputCovariance c = new InputCovariance(16);
            for (int i = 0; i < captions.size(); i += 32) c.accumulate(text.encode(ids(tokenizer, captions.subList(i, Math.min(captions.size(), i + 32)))));
            Tensor cInv = c.inverse();
            Tensor e = text.encode(ids(tokenizer, List.of("a teddy on the beach")));
            Tensor iStar = text.encode(ids(tokenizer, List.of("a photo of a teddy"))).select(0, 0).select(0, 5);
            double norm = Ops.item(iStar.dot(Ops.matmul(cInv, iStar)));
            for (int t = 0; t < 12; t++) {
                double expected = Ops.item(e.select(0, 0).select(0, t).dot(Ops.matmul(cInv, iStar))) / norm;
                assertEquals(expected, p.positions().get(12 + t).s(), 1e-4, "position " + t);
            }
        }
        assertEquals(SupercategoryProfile.median(p.elsewhere()), p.elsewhere()[10] / 2 + p.elsewhere()[11] / 2, 1e-12);
        assertEquals(p.elsewhere()[21], p.highest(3).get(0).s());
        assertTrue(p.highest(3).get(1).s() >= p.highest(3).get(2).s() && !p.highest(22).stream().anyMatch(SupercategoryProfile.Position::atWord));
        // a random layer norm (gamma 1, beta 0) puts every encoding on the plane Σ y = 0: C's smallest eigenvalue lies along 1/gamma
        assertEquals(1.0, p.conditioning().smallestAlongLayerNormNormal(), 1e-6);
        assertTrue(p.conditioning().beyondSmallest() >= 1 && p.conditioning().beyondSmallest() < p.conditioning().condition(), p.conditioning().summary());
        assertTrue(p.summary().contains("its smallest eigenvalue lies along the final layer norm's 1/gamma (|cos| 1.0000)"), p.summary());
        assertTrue(p.summary().contains("22 positions"), p.summary());
    }

    private static Tensor ids(ClipTokenizer tokenizer, List<String> prompts) {
        long[] ids = new long[prompts.size() * 12];
        for (int i = 0; i < prompts.size(); i++) System.arraycopy(tokenizer.encodeForModel(prompts.get(i)).ids(), 0, ids, i * 12, 12);
        return Ops.fromLongs(ids, prompts.size(), 12);
    }
}
