package dev.perfusion.perfusion;

import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.text.ClipTextModel;
import dev.perfusion.text.ClipTokenizer;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * How far training moved concepts' word embeddings v* from their supercategories' (where they start), and towards
 * each other: two concepts whose embeddings moved the same way have alike i*, so each one's gate opens at the
 * other's word.
 */
public record EmbeddingDrift(String word, String supercategory, double cosToSupercategory, double norm, double supercategoryNorm) {
    /** The drift of each concept, on the model whose token table it was trained from. */
    public static List<EmbeddingDrift> of(ClipTextModel text, ClipTokenizer tokenizer, List<ConceptFile> concepts) {
        List<EmbeddingDrift> out = new ArrayList<>();
        try (Scope s = Scope.inference()) {
            for (ConceptFile c : concepts) {
                Tensor start = supercategoryEmbedding(text, tokenizer, c), v = c.embedding();
                out.add(new EmbeddingDrift(c.word(), c.supercategory(), cos(v, start), Ops.item(v.norm()), Ops.item(start.norm())));
            }
        }
        return out;
    }

    /** Cosine between two concepts' embeddings, and between their supercategories'. */
    public static double[] pairCosines(ClipTextModel text, ClipTokenizer tokenizer, ConceptFile a, ConceptFile b) {
        try (Scope s = Scope.inference()) {
            return new double[] {cos(a.embedding(), b.embedding()),
                    cos(supercategoryEmbedding(text, tokenizer, a), supercategoryEmbedding(text, tokenizer, b))};
        }
    }

    public String summary() {
        return String.format(Locale.ROOT, "%s: word embedding at cos %.3f to %s's, norm %.3f (%s's %.3f)", word, cosToSupercategory, supercategory,
                norm, supercategory, supercategoryNorm);
    }

    private static Tensor supercategoryEmbedding(ClipTextModel text, ClipTokenizer tokenizer, ConceptFile c) {
        return text.tokenEmbedding().weight.t().select(0, AppliedConcepts.singleToken(tokenizer, c.supercategory())).to(c.embedding().scalar_type());
    }

    private static double cos(Tensor a, Tensor b) {
        return Ops.item(a.dot(b)) / (Ops.item(a.norm()) * Ops.item(b.norm()));
    }
}
