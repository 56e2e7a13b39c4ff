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
        try (Scope s = Scope.inference()) {
            List<Tensor> starts = starts(text, tokenizer, concepts);
            List<EmbeddingDrift> out = new ArrayList<>();
            for (int j = 0; j < concepts.size(); j++) out.add(of(concepts.get(j), starts.get(j)));
            return out;
        }
    }

    /** Lines to show: each concept's drift, then for each pair of concepts their embeddings' cosine beside their supercategories'. */
    public static List<String> report(ClipTextModel text, ClipTokenizer tokenizer, List<ConceptFile> concepts) {
        try (Scope s = Scope.inference()) {
            List<Tensor> starts = starts(text, tokenizer, concepts);
            List<String> lines = new ArrayList<>();
            for (int j = 0; j < concepts.size(); j++) lines.add(of(concepts.get(j), starts.get(j)).summary());
            for (int a = 0; a < concepts.size(); a++) {
                for (int b = a + 1; b < concepts.size(); b++) {
                    ConceptFile first = concepts.get(a), second = concepts.get(b);
                    lines.add(String.format(Locale.ROOT, "%s and %s: word embeddings at cos %.3f (%s and %s: %.3f)", first.word(), second.word(),
                            Ops.cosine(first.embedding(), second.embedding()), first.supercategory(), second.supercategory(),
                            Ops.cosine(starts.get(a), starts.get(b))));
                }
            }
            return lines;
        }
    }

    public String summary() {
        return String.format(Locale.ROOT, "%s: word embedding at cos %.3f to %s's, norm %.3f (%s's %.3f)", word, cosToSupercategory, supercategory,
                norm, supercategory, supercategoryNorm);
    }

    private static EmbeddingDrift of(ConceptFile c, Tensor start) {
        return new EmbeddingDrift(c.word(), c.supercategory(), Ops.cosine(c.embedding(), start), Ops.item(c.embedding().norm()), Ops.item(start.norm()));
    }

    /** Each concept's supercategory embedding, where its training started v*. */
    private static List<Tensor> starts(ClipTextModel text, ClipTokenizer tokenizer, List<ConceptFile> concepts) {
        Tensor table = text.tokenEmbedding().weight.t();
        List<Tensor> starts = new ArrayList<>();
        for (ConceptFile c : concepts) starts.add(table.select(0, AppliedConcepts.singleToken(tokenizer, c.supercategory())).to(c.embedding().scalar_type()));
        return starts;
    }
}
