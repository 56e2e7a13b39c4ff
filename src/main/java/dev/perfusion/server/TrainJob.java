package dev.perfusion.server;

import dev.perfusion.io.layout.ResolvedModel;
import dev.perfusion.perfusion.AppliedConcepts;
import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.perfusion.CovarianceFile;
import dev.perfusion.perfusion.GateCheck;
import dev.perfusion.training.ConceptTrainer;
import dev.perfusion.training.TrainingImages;
import dev.perfusion.training.TrainingSettings;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A training job: {@link ConceptTrainer} as {@code train} runs it, on photos uploaded into the job's folder (or a
 * shipped example set), with sample pictures written along the way; the finished concept file is then renamed into
 * the library. Everything that can be checked without the model's weights (the words, the photos and masks) is
 * checked before the job is queued.
 */
final class TrainJob {
    static final int MAX_TRAIN_STEPS = 5000;

    /** What to train: photos (and masks) already in folders, the words, and the settings a page may choose. */
    record Plan(String model, Path photos, Path masks, boolean attentionMask, String word, String supercategory, int trainSteps,
                int sampleEvery, long seed, boolean overwrite, Path work) {
        /** A sample picture every eighth of the run, unless a page says otherwise. */
        static int defaultSampleEvery(int trainSteps) {
            return Math.max(1, (trainSteps + 7) / 8);
        }

        Map<String, Object> shown(String photosFrom) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("model", model);
            m.put("word", word);
            m.put("supercategory", supercategory);
            m.put("trainSteps", trainSteps);
            m.put("sampleEvery", sampleEvery);
            m.put("seed", seed);
            m.put("mask", attentionMask ? "attention" : masks != null ? "files" : "none");
            m.put("photos", photosFrom);
            m.put("overwrite", overwrite);
            return m;
        }
    }

    private final Models models;
    private final ConceptLibrary library;

    TrainJob(Models models, ConceptLibrary library) {
        this.models = models;
        this.library = library;
    }

    /**
     * Checks a plan as {@code train} does before loading weights: the supercategory one token and the word a new one
     * of the model's vocabulary, the photos readable and large enough (masks of their size); an existing concept of
     * that name only with {@code overwrite}. Returns the warnings (a photo that must be upscaled).
     */
    List<String> check(Plan plan) throws IOException {
        if (!Folder.validName(plan.word()) || plan.word().endsWith(".")) {
            throw ApiException.badRequest("word: the concept's word names its file: letters, digits, '-' and '_', such as my-teddy");
        }
        if (plan.supercategory() == null || plan.supercategory().isBlank()) throw ApiException.badRequest("supercategory: give what it is a kind of");
        if (plan.trainSteps() < 1 || plan.trainSteps() > MAX_TRAIN_STEPS) {
            throw ApiException.badRequest("trainSteps: from 1 to " + MAX_TRAIN_STEPS + ", got " + plan.trainSteps());
        }
        if (plan.sampleEvery() < 0) throw ApiException.badRequest("sampleEvery: 0 (no samples) or more steps, got " + plan.sampleEvery());
        if (library.exists(plan.word()) && !plan.overwrite()) {
            throw ApiException.conflict("a concept '" + plan.word() + "' is already in the library; train with overwrite=true to replace it");
        }
        Optional<String> otherCase = library.otherCase(plan.word());
        if (otherCase.isPresent()) {
            throw ApiException.conflict("a concept '" + otherCase.get() + "' is already in the library, and prompts do not tell '" + plan.word()
                    + "' from it (they ignore case): train it as '" + otherCase.get() + "' with overwrite=true to replace it, or choose another word");
        }
        ClipTokenizer tokenizer = models.tokenizer(plan.model());
        try {
            AppliedConcepts.singleToken(tokenizer, plan.supercategory());
            tokenizer.withAddedTokens(List.of(plan.word()));
        } catch (IllegalArgumentException e) {
            throw ApiException.badRequest(e.getMessage());
        }
        ResolvedModel resolved = models.resolved(plan.model());
        int size = resolved.unetConfig().sampleSize() * resolved.vaeConfig().downsamplingFactor();
        List<String> warnings = new ArrayList<>();
        try {
            TrainingImages.check(plan.photos(), plan.masks(), size, TrainingImages.Fit.CROP, warnings::add);
        } catch (IOException e) {
            throw ApiException.badRequest(e.getMessage().replace(plan.work().toString() + "/", ""));
        }
        return warnings.stream().map(w -> w.replace(plan.work().toString() + "/", "")).toList();
    }

    /** The work of a checked plan. */
    Job.Work work(Plan plan, List<String> warnings) {
        return (job, progress) -> {
            warnings.forEach(progress::message);
            Models.Loaded model = models.load(plan.model(), progress);
            TrainingSettings settings = TrainingSettings.defaults().toBuilder().steps(plan.trainSteps()).seed(plan.seed())
                    .schedule(0, plan.sampleEvery()).attentionMasks(plan.attentionMask()).build();
            Path out = plan.work().resolve(plan.word() + ConceptLibrary.EXTENSION);
            CovarianceFile.Loaded cInv = model.covariance(progress);
            ConceptTrainer.Result r = new ConceptTrainer(model.sd, cInv.cInv(), cInv.provenance(), plan.word(), plan.supercategory(), settings)
                    .train(plan.photos(), plan.masks(), out, false, plan.work().resolve("samples"), progress);
            progress.checkCancelled();
            ConceptLibrary.Listed listed = library.install(out, plan.word(), plan.overwrite());
            // after the install: the concept is kept whatever the check finds
            Optional<GateCheck> gateCheck = GateCheck.of(model.sd, cInv.cInv(), r.concept());
            gateCheck.ifPresent(check -> progress.message(check.summary()));
            Map<String, Object> result = new LinkedHashMap<>();
            result.put("concept", listed);
            result.put("seconds", r.seconds());
            result.put("probeBefore", r.probeBefore());
            result.put("probeAfter", r.probeAfter());
            gateCheck.ifPresent(check -> result.put("gateCheck", Map.of("prompt", check.prompt(), "token", check.token(), "s", check.s(),
                    "g", check.g(), "opens", check.opens(), "message", check.summary())));
            job.result(result);
        };
    }
}
