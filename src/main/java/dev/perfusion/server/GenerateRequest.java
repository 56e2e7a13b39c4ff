package dev.perfusion.server;

import dev.perfusion.perfusion.Concept;
import dev.perfusion.perfusion.ConceptGeneration;
import dev.perfusion.pipeline.SideSteering;
import dev.perfusion.sampling.Schedulers;

import java.util.List;

/**
 * A generation as the page or a script asks for it (JSON); absent fields take the defaults, and {@link #completed}
 * checks every value before the job is queued, so that a bad request is a 400 and never a failed job.
 *
 * @param seed the first picture's seed (picture k has seed + k); absent or null: random
 * @param width 0 or absent: the model's native size
 * @param concepts concepts of the library by name, each with its gate (absent beta or tau: the file's)
 * @param sweep beta values: one picture per value from the same seed (every concept takes the value), instead of count
 * @param sideSteering how strongly each object is drawn on the side the prompt puts it (0: not; {@code SideSteering})
 */
record GenerateRequest(String prompt, String negativePrompt, Long seed, Integer steps, String scheduler, Double guidance,
                       Integer width, Integer height, Integer count, String model, List<ConceptChoice> concepts,
                       Boolean globalLock, Boolean approximate, List<Double> sweep, Double conceptStart,
                       Double sideSteering) {
    static final int MAX_STEPS = 150, MAX_COUNT = 16, MAX_SIDE = 2048, MAX_PROMPT = 2000, MAX_CONCEPTS = 8, MAX_SWEEP = 8;

    /** A concept of the library, with the gate to apply it with. */
    record ConceptChoice(String name, Double beta, Double tau) {}

    /** Every field given, each checked; {@code randomSeed} serves when no seed was given. */
    GenerateRequest completed(String defaultModel, long randomSeed) {
        if (prompt == null || prompt.isBlank()) throw ApiException.badRequest("prompt: give what to draw");
        if (prompt.length() > MAX_PROMPT) throw ApiException.badRequest("prompt: at most " + MAX_PROMPT + " characters");
        String negative = negativePrompt == null ? "" : negativePrompt;
        if (negative.length() > MAX_PROMPT) throw ApiException.badRequest("negativePrompt: at most " + MAX_PROMPT + " characters");
        int s = steps == null ? 25 : steps;
        if (s < 1 || s > MAX_STEPS) throw ApiException.badRequest("steps: from 1 to " + MAX_STEPS + ", got " + s);
        String sampler = scheduler == null ? Schedulers.Kind.DDIM.id : scheduler;
        if (!Schedulers.NAMES.contains(sampler)) throw ApiException.badRequest("scheduler: one of " + Schedulers.NAMES + ", got '" + sampler + "'");
        double g = guidance == null ? 7.5 : guidance;
        if (!(g >= 0 && g <= 50)) throw ApiException.badRequest("guidance: from 0 to 50, got " + g);
        named("negativePrompt", () -> ConceptGeneration.Settings.checkNegativePrompt(negative, g));
        int w = side("width", width), h = side("height", height);
        int n = count == null ? 1 : count;
        if (n < 1 || n > MAX_COUNT) throw ApiException.badRequest("count: from 1 to " + MAX_COUNT + ", got " + n);
        String m = model == null || model.isBlank() ? defaultModel : model;
        if (m == null) throw ApiException.badRequest("model: the models folder has no model");
        Folder.checkName(m, "model");
        List<ConceptChoice> cs = concepts == null ? List.of() : List.copyOf(concepts);
        if (cs.size() > MAX_CONCEPTS) throw ApiException.badRequest("concepts: at most " + MAX_CONCEPTS);
        for (ConceptChoice c : cs) {
            if (c == null || c.name() == null) throw ApiException.badRequest("concepts: each needs a name");
            Folder.checkName(c.name(), "concept");
            named("concept '" + c.name() + "'", () -> {
                if (c.beta() != null) Concept.checkBeta(c.beta());
                if (c.tau() != null) Concept.checkTau(c.tau());
            });
        }
        if (cs.stream().map(ConceptChoice::name).distinct().count() != cs.size()) throw ApiException.badRequest("concepts: each at most once");
        List<Double> betas = sweep == null ? null : List.copyOf(sweep);
        if (betas != null) {
            if (cs.isEmpty()) throw ApiException.badRequest("sweep: a beta sweep needs at least one concept");
            if (betas.isEmpty() || betas.size() > MAX_SWEEP) throw ApiException.badRequest("sweep: from 1 to " + MAX_SWEEP + " beta values");
            for (double b : betas) named("sweep", () -> Concept.checkBeta(b));
        }
        double start = conceptStart == null ? Concept.GENERATION_CONCEPT_START : conceptStart;
        named("conceptStart", () -> Concept.checkConceptStart(start));
        double steering = sideSteering == null ? SideSteering.DEFAULT_STRENGTH : sideSteering;
        named("sideSteering", () -> SideSteering.checkStrength(steering));
        return new GenerateRequest(prompt, negative, seed == null ? randomSeed : seed, s, sampler, g, w, h, betas != null ? 1 : n, m, cs,
                Boolean.TRUE.equals(globalLock), Boolean.TRUE.equals(approximate), betas, start, steering);
    }

    /** Runs a library check; what it refuses is a bad request naming {@code field}. */
    private static void named(String field, Runnable check) {
        try {
            check.run();
        } catch (IllegalArgumentException e) {
            throw ApiException.badRequest(field + ": " + e.getMessage());
        }
    }

    /** The sides against the model's VAE, which the request alone does not know: a picture is whole latent pixels. */
    void checkSides(int vaeScaleFactor) {
        checkSide("width", width, vaeScaleFactor);
        checkSide("height", height, vaeScaleFactor);
    }

    private static void checkSide(String name, Integer value, int vaeScaleFactor) {
        if (value != null && value % vaeScaleFactor != 0) {
            throw ApiException.badRequest(name + ": a multiple of " + vaeScaleFactor + " (the model's VAE scale factor), got " + value);
        }
    }

    private static int side(String name, Integer value) {
        int v = value == null ? 0 : value;
        if (v != 0 && (v < 8 || v > MAX_SIDE)) throw ApiException.badRequest(name + ": 0 (the model's size) or from 8 to " + MAX_SIDE + ", got " + v);
        return v;
    }
}
