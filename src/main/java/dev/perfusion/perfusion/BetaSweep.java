package dev.perfusion.perfusion;

import dev.perfusion.io.ImageGrid;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.pipeline.TextToImage;
import dev.perfusion.util.Progress;

import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * One grid of prompts (rows) by gate thresholds beta (columns), every cell from the same seed, so that the
 * fidelity-versus-prompt trade-off of a concept can be chosen by eye. Every applied concept takes the column's beta.
 */
public final class BetaSweep {
    private BetaSweep() {}

    /** @param request the sampler settings; its prompts are replaced by each of {@code prompts} in turn */
    public static BufferedImage grid(StableDiffusion sd, AppliedConcepts applied, List<String> prompts, List<Double> betas,
                                     TextToImage.Request request, long seed, Progress progress) {
        ConceptGate gate = applied.gate();
        if (gate == null) throw new IllegalArgumentException("a beta sweep needs a gated concept; embedding-only (textual inversion) concepts have no beta");
        List<Concept> original = new ArrayList<>();
        for (int j = 0; j < gate.conceptCount(); j++) original.add(gate.concept(j));
        List<List<BufferedImage>> rows = new ArrayList<>();
        try {
            for (String prompt : prompts) {
                TextToImage.Request r = request.withPrompt(prompt);
                List<BufferedImage> row = new ArrayList<>();
                for (double beta : betas) {
                    for (int j = 0; j < gate.conceptCount(); j++) gate.setConcept(j, original.get(j).withGate(beta, original.get(j).tau()));
                    row.add(TextToImage.generate(sd, applied, r, seed, progress).image());
                }
                rows.add(row);
            }
        } finally {
            for (int j = 0; j < gate.conceptCount(); j++) gate.setConcept(j, original.get(j));
        }
        List<String> columns = betas.stream().map(b -> String.format(Locale.ROOT, "beta %.2f", b)).toList();
        return ImageGrid.of(rows, prompts, columns, Math.max(128, Math.min(request.width(), 256)));
    }
}
