package dev.perfusion.server;

import dev.perfusion.io.Png;
import dev.perfusion.perfusion.AppliedConcepts;
import dev.perfusion.perfusion.BetaSweep;
import dev.perfusion.perfusion.ConceptFile;
import dev.perfusion.perfusion.ConceptGate;
import dev.perfusion.pipeline.GenerationParameters;
import dev.perfusion.pipeline.PromptEncoder;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.pipeline.TextToImage;

import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A generation job: the library's text-to-image recipe as {@code generate} runs it (concepts installed by
 * {@link AppliedConcepts}, each picture by {@link TextToImage#generate}, a sweep by {@link BetaSweep}), each picture
 * written to the job's output folder as a PNG carrying its parameters.
 */
final class GenerateJob {
    private final Models models;
    private final ConceptLibrary library;
    private final Folder outputs;

    GenerateJob(Models models, ConceptLibrary library, Folder outputs) {
        this.models = models;
        this.library = library;
        this.outputs = outputs;
    }

    /** The work of a completed request. */
    Job.Work work(GenerateRequest r) {
        return (job, progress) -> {
            Models.Loaded model = models.load(r.model(), progress);
            StableDiffusion sd = model.sd;
            int nativeSize = sd.unet.config().sampleSize() * sd.vaeScaleFactor();
            int width = r.width() == 0 ? nativeSize : r.width(), height = r.height() == 0 ? nativeSize : r.height();
            TextToImage.latentShape(sd, width, height); // says which sizes this model can draw
            List<AppliedConcepts.Use> uses = new ArrayList<>();
            List<GenerationParameters.AppliedGate> gates = new ArrayList<>();
            for (GenerateRequest.ConceptChoice choice : r.concepts()) {
                ConceptFile c = library.load(choice.name());
                c.checkFits(library.path(choice.name()).getFileName(), sd.unetHash(), sd.textEncoderHash(),
                        sd.textEncoder.config().hiddenSize(), AppliedConcepts.layerDims(sd), false);
                AppliedConcepts.Use use = new AppliedConcepts.Use(c, choice.beta() != null ? choice.beta() : c.beta(),
                        choice.tau() != null ? choice.tau() : c.tau());
                uses.add(use);
                gates.add(new GenerationParameters.AppliedGate(choice.name() + ConceptLibrary.EXTENSION, use.beta(), use.tau()));
            }
            TextToImage.Request request = new TextToImage.Request(r.prompt(), r.negativePrompt(), r.guidance(), r.steps(), r.scheduler(),
                    width, height);
            AppliedConcepts applied = uses.isEmpty() ? null : AppliedConcepts.apply(sd, model.covarianceInverse(progress), uses,
                    r.approximate() ? ConceptGate.Orthogonalization.APPROXIMATE : ConceptGate.Orthogonalization.EXACT, r.globalLock());
            try {
                if (applied != null) {
                    for (ConceptFile c : applied.absentFrom(r.prompt())) {
                        progress.message("the prompt does not contain the concept word '" + c.word() + "': the concept has no effect on it");
                    }
                }
                PromptEncoder encoder = applied != null ? applied : sd::encodePrompts;
                if (r.sweep() != null) {
                    BufferedImage grid = BetaSweep.grid(sd, applied, List.of(r.prompt()), r.sweep(), request, r.seed(), progress);
                    // every concept takes each column's beta: the gates are the sweep's, not one per concept
                    String text = "Beta sweep: " + r.sweep() + " of " + gates.stream().map(GenerationParameters.AppliedGate::file).toList() + "\n"
                            + parameters(r, sd, List.of(), width, height, r.seed()).text();
                    write(job, progress, "beta-sweep.png", grid, Map.of("parameters", text), r.seed(), text);
                } else {
                    for (int k = 0; k < r.count(); k++) {
                        long seed = r.seed() + k;
                        BufferedImage image = TextToImage.generate(sd, encoder, request, seed, progress).image();
                        GenerationParameters p = parameters(r, sd, gates, width, height, seed);
                        write(job, progress, String.format(Locale.ROOT, "%05d-%d.png", k, seed), image, p.pngText(), seed, p.text());
                    }
                }
            } finally {
                if (applied != null) applied.close();
            }
        };
    }

    private static GenerationParameters parameters(GenerateRequest r, StableDiffusion sd, List<GenerationParameters.AppliedGate> gates,
                                                   int width, int height, long seed) {
        return new GenerationParameters(r.prompt(), r.negativePrompt(), r.steps(), r.scheduler(), r.guidance(), Long.toString(seed),
                width, height, sd.name, gates, r.globalLock());
    }

    private void write(Job job, JobProgress progress, String file, BufferedImage image, Map<String, String> text, long seed, String parameters)
            throws java.io.IOException {
        Path target = outputs.resolve(job.id, file);
        Png.write(target, image, text);
        Map<String, Object> shown = new LinkedHashMap<>();
        shown.put("url", "/api/outputs/" + job.id + "/" + file);
        shown.put("seed", seed);
        shown.put("width", image.getWidth());
        shown.put("height", image.getHeight());
        shown.put("parameters", parameters);
        job.image(shown);
        progress.announce();
    }
}
