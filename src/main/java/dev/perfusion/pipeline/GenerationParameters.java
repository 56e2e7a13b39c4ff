package dev.perfusion.pipeline;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What a picture was made with, as the {@code parameters} text chunk of its PNG in the form other Stable Diffusion
 * tools write ("prompt \n Negative prompt: ... \n Steps: 30, Sampler: ddim, ..."): one place for the CLI and the
 * server.
 *
 * @param seed the seed, or what replaced it ("init-latents noise.npy")
 * @param concepts the concept files' names, each with the gate it was applied with; empty without concepts
 * @param conceptStart the fraction of the denoising steps drawn before the concepts took over (0 without concepts)
 * @param sideSteering the strength of {@link SideSteering} (0: none)
 */
public record GenerationParameters(String prompt, String negativePrompt, int steps, String sampler, double guidance, String seed,
                                   int width, int height, String model, List<AppliedGate> concepts, boolean globalLock,
                                   double conceptStart, double sideSteering) {
    /** A concept as it was applied: its file's name, beta and tau. */
    public record AppliedGate(String file, double beta, double tau) {}

    public GenerationParameters {
        concepts = List.copyOf(concepts);
    }

    /** The text of the PNG's {@code parameters} chunk. */
    public String text() {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("Steps", steps);
        p.put("Sampler", sampler);
        p.put("CFG scale", guidance);
        p.put("Seed", seed);
        p.put("Size", width + "x" + height);
        p.put("Model", model);
        if (!concepts.isEmpty()) {
            p.put("Concepts", concepts.stream().map(AppliedGate::file).toList());
            p.put("Concept gate", "beta " + concepts.stream().map(AppliedGate::beta).toList()
                    + " tau " + concepts.stream().map(AppliedGate::tau).toList() + (globalLock ? " global lock" : ""));
            p.put("Concept start", conceptStart);
        }
        if (sideSteering > 0) p.put("Side steering", sideSteering);
        StringBuilder s = new StringBuilder(prompt);
        if (!negativePrompt.isEmpty()) s.append("\nNegative prompt: ").append(negativePrompt);
        s.append("\n");
        p.forEach((k, v) -> s.append(k).append(": ").append(v).append(", "));
        s.append("Generator: perfusion-java");
        return s.toString();
    }

    /** The PNG text chunks of a picture made with these parameters. */
    public Map<String, String> pngText() {
        return Map.of("parameters", text());
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "%s (seed %s)", prompt, seed);
    }
}
