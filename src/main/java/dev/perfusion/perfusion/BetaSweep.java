package dev.perfusion.perfusion;

import dev.perfusion.io.ImageGrid;
import dev.perfusion.pipeline.PromptEncoder;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.pipeline.TextToImage;
import dev.perfusion.tensor.Threads;
import dev.perfusion.util.Progress;

import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntFunction;
import java.util.stream.IntStream;
import java.util.Locale;

/**
 * One grid of prompts (rows) by gate thresholds beta (columns), every cell from the same seed, so that the
 * fidelity-versus-prompt trade-off of a concept can be chosen by eye. Every applied concept takes the column's beta.
 */
public final class BetaSweep {
    private BetaSweep() {}

    /**
     * @param request      the sampler settings; its prompts are replaced by each of {@code prompts} in turn
     * @param conceptStart as {@link AppliedConcepts#startingAt}
     */
    public static BufferedImage grid(StableDiffusion sd, AppliedConcepts applied, double conceptStart, List<String> prompts, List<Double> betas,
                                     TextToImage.Request request, long seed, Progress progress) {
        ConceptGate gate = applied.gate();
        if (gate == null) throw new IllegalArgumentException("a beta sweep needs a gated concept; embedding-only (textual inversion) concepts have no beta");
        List<Concept> original = new ArrayList<>();
        for (int j = 0; j < gate.conceptCount(); j++) original.add(gate.concept(j));
        PromptEncoder encoder = applied.startingAt(conceptStart);
        BufferedImage[][] cells = new BufferedImage[prompts.size()][betas.size()];
        // a small model's cells of one column (one beta, so one gate state) are drawn side by side, one per thread
        int workers = sd.sideBySideWorkers(prompts.size());
        try (Threads.SideBySide side = workers > 1 ? Threads.sideBySide(workers, "beta-sweep") : null) {
            // cells drawn at once would interleave their step-by-step progress: then the grid's cells are counted instead
            Progress perCell = side == null ? progress : Progress.messagesOnly(progress);
            for (int c = 0; c < betas.size(); c++) {
                double beta = betas.get(c);
                for (int j = 0; j < gate.conceptCount(); j++) gate.setConcept(j, original.get(j).withGate(beta, original.get(j).tau()));
                IntFunction<BufferedImage> cell = p -> TextToImage.generate(sd, encoder, request.withPrompt(prompts.get(p)), seed, perCell).image();
                List<BufferedImage> column = side == null ? IntStream.range(0, prompts.size()).mapToObj(cell).toList() : side.run(prompts.size(), cell);
                for (int p = 0; p < prompts.size(); p++) cells[p][c] = column.get(p);
                if (side != null) progress.update("beta sweep", (long) (c + 1) * prompts.size(), (long) betas.size() * prompts.size(), "beta " + beta);
            }
        } finally {
            for (int j = 0; j < gate.conceptCount(); j++) gate.setConcept(j, original.get(j));
        }
        List<List<BufferedImage>> rows = new ArrayList<>();
        for (BufferedImage[] row : cells) rows.add(List.of(row));
        List<String> columns = betas.stream().map(b -> String.format(Locale.ROOT, "beta %.2f", b)).toList();
        return ImageGrid.of(rows, prompts, columns, Math.max(128, Math.min(request.width(), 256)));
    }
}
