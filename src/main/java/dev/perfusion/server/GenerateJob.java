package dev.perfusion.server;

import dev.perfusion.io.Png;
import dev.perfusion.perfusion.ConceptGeneration;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A generation job: the library's {@link ConceptGeneration}, as {@code generate} runs it, each picture written to the
 * job's output folder as a PNG carrying its parameters.
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
            List<ConceptGeneration.Choice> choices = new ArrayList<>();
            try {
                for (GenerateRequest.ConceptChoice choice : r.concepts()) {
                    choices.add(new ConceptGeneration.Choice(library.path(choice.name()).getFileName(), library.load(choice.name()),
                            choice.beta(), choice.tau()));
                }
                generate(r, model, choices, job, progress);
            } finally {
                choices.forEach(c -> c.concept().release()); // the gate's memory goes with the generation's close
            }
        };
    }

    private void generate(GenerateRequest r, Models.Loaded model, List<ConceptGeneration.Choice> choices, Job job, JobProgress progress)
            throws java.io.IOException {
        ConceptGeneration.Settings settings = new ConceptGeneration.Settings(r.negativePrompt(), r.guidance(), r.steps(), r.scheduler(),
                r.width(), r.height(), r.globalLock(), r.approximate(), r.conceptStart(), r.sideSteering());
        try (ConceptGeneration generation = ConceptGeneration.open(model.sd, choices, settings, false,
                () -> model.covariance(progress), progress)) {
            if (r.sweep() != null) {
                write(job, progress, "beta-sweep.png", generation.sweep(List.of(r.prompt()), r.sweep(), r.seed()), r.seed());
            } else {
                List<Long> seeds = new ArrayList<>();
                for (int k = 0; k < r.count(); k++) seeds.add(r.seed() + k);
                generation.drawEach(java.util.Collections.nCopies(r.count(), r.prompt()), seeds,
                        (k, picture) -> write(job, progress, String.format(Locale.ROOT, "%05d-%d.png", k, seeds.get(k)), picture, seeds.get(k)));
            }
        }
    }

    private void write(Job job, JobProgress progress, String file, ConceptGeneration.Picture picture, long seed) throws java.io.IOException {
        Path target = outputs.resolve(job.id, file);
        Png.write(target, picture.image(), picture.pngText());
        Map<String, Object> shown = new LinkedHashMap<>();
        shown.put("url", "/api/outputs/" + job.id + "/" + file);
        shown.put("seed", seed);
        shown.put("width", picture.image().getWidth());
        shown.put("height", picture.image().getHeight());
        shown.put("parameters", picture.text());
        job.image(shown);
        progress.announce();
    }
}
