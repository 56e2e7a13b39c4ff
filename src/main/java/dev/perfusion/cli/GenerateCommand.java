package dev.perfusion.cli;

import dev.perfusion.io.Npy;
import dev.perfusion.io.Png;
import dev.perfusion.perfusion.AppliedConcepts;
import dev.perfusion.perfusion.BetaSweep;
import dev.perfusion.perfusion.Concept;
import dev.perfusion.perfusion.ConceptFile;
import dev.perfusion.perfusion.ConceptGate;
import dev.perfusion.perfusion.CovarianceCache;
import dev.perfusion.perfusion.CovarianceFile;
import dev.perfusion.pipeline.GenerationParameters;
import dev.perfusion.training.ConceptTrainer;
import dev.perfusion.pipeline.PromptEncoder;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.pipeline.TextToImage;
import dev.perfusion.sampling.Schedulers;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.util.Progress;
import org.bytedeco.pytorch.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;

@Command(name = "generate", mixinStandardHelpOptions = true,
        description = {"Generate images from a text prompt.",
                "Seeds are reproducible within this project on any machine and device; they cannot match torch's "
                        + "random generator, so the same seed gives other images in other tools (use --init-latents "
                        + "to feed exact initial noise)."})
final class GenerateCommand implements Callable<Integer> {
    @Mixin ModelOptions model;
    @Mixin CovarianceOptions covariance;

    @Option(names = "--prompt", required = true, description = "What to draw; repeat for several prompts.") List<String> prompts;
    @Option(names = "--concept", paramLabel = "FILE", description = "A learned concept file (repeatable: concepts combine). Use its word in the prompt.") List<Path> concepts = new ArrayList<>();
    @Option(names = "--beta", split = ",", description = "Concept gate threshold(s): one for all or one per concept; lower = more concept, higher = more prompt (default: each file's, 0.7).") List<Double> betas = new ArrayList<>();
    @Option(names = "--tau", split = ",", description = "Concept gate temperature(s) (default: each file's, 0.15).") List<Double> taus = new ArrayList<>();
    @Option(names = "--global-lock", description = "Global key locking: keys see the prompt with each concept word replaced by its supercategory (try beta 0.4-0.6).") boolean globalLock;
    @Option(names = "--approximate", description = "Combine several concepts with the approximate formula instead of the exact C^-1-orthogonalised one.") boolean approximate;
    @Option(names = "--force", description = "Use concepts made for another base model or text encoder of the same shapes.") boolean force;
    @Option(names = "--beta-sweep", split = ",", paramLabel = "B1,B2,...", description = "Write one grid image: prompts (rows) by these beta values (columns), same seed.") List<Double> betaSweep;
    @Option(names = "--negative-prompt", defaultValue = "", description = "What to steer away from (default: empty).") String negativePrompt;
    @Option(names = "--guidance", defaultValue = "7.5", description = "Classifier-free guidance scale (default: ${DEFAULT-VALUE}).") double guidance;
    @Option(names = "--steps", defaultValue = "30", description = "Denoising steps (default: ${DEFAULT-VALUE}).") int steps;
    @Option(names = "--scheduler", defaultValue = "ddim", converter = Choices.Scheduler.class, completionCandidates = Choices.Scheduler.class,
            description = "The sampler: ${COMPLETION-CANDIDATES}, built from the model's scheduler config (default: ${DEFAULT-VALUE}).")
    Schedulers.Kind scheduler;
    @Option(names = "--width", defaultValue = "0", description = "Image width in pixels (default: the model's native size, 512 for SD 1.5, 64 for the bundled model).") int width;
    @Option(names = "--height", defaultValue = "0", description = "Image height in pixels (default: the model's native size).") int height;
    @Option(names = "--seed", defaultValue = "1", description = "Seed of the initial noise; image i uses seed+i (default: ${DEFAULT-VALUE}).") long seed;
    @Option(names = "--count", defaultValue = "1", description = "Number of images (default: ${DEFAULT-VALUE}).") int count;
    @Option(names = "--out", defaultValue = "out", description = "A .png path (one image) or a folder (default: ${DEFAULT-VALUE}).") Path out;
    @Option(names = "--init-latents", paramLabel = "FILE.npy",
            description = "Unit-variance initial noise [1, C, h, w] (what diffusers' latents= takes); replaces the seed.") Path initLatents;
    @Option(names = "--save-latents", paramLabel = "FILE.npy",
            description = "Write the final latents (float32, before VAE decoding, not divided by the scaling factor).") Path saveLatents;

    @Override
    public Integer call() throws Exception {
        if (count < 1) throw new IllegalArgumentException("--count must be at least 1, got " + count);
        int total = count * prompts.size();
        if (initLatents != null && total != 1) throw new IllegalArgumentException("--init-latents gives one image: use one --prompt and --count 1");
        if (betaSweep != null && concepts.isEmpty()) throw new IllegalArgumentException("--beta-sweep needs at least one --concept");
        if (steps < 1) throw new IllegalArgumentException("--steps must be at least 1, got " + steps);
        if (!(guidance >= 0)) throw new IllegalArgumentException("--guidance must be at least 0, got " + guidance);
        for (double b : betas) Flags.named("--beta", () -> Concept.checkBeta(b));
        for (double t : taus) Flags.named("--tau", () -> Concept.checkTau(t));
        if (betaSweep != null) for (double b : betaSweep) Flags.named("--beta-sweep", () -> Concept.checkBeta(b));
        covariance.check();
        List<ConceptFile> loaded = new ArrayList<>();
        for (Path c : concepts) loaded.add(FileChecks.concept(c));
        List<AppliedConcepts.Use> uses = uses(loaded);
        List<Path> targets = betaSweep != null ? List.of(sweepTarget()) : targets(total);
        TerminalProgress progress = new TerminalProgress(System.out);
        long started = System.nanoTime();
        StableDiffusion sd = model.load(progress);
        int nativeSize = sd.unet.config().sampleSize() * sd.vaeScaleFactor();
        if (width == 0) width = nativeSize;
        if (height == 0) height = nativeSize;
        long[] latentShape = Flags.named("--width and --height", () -> TextToImage.latentShape(sd, width, height));
        AppliedConcepts applied = null;
        if (!uses.isEmpty()) {
            for (int j = 0; j < loaded.size(); j++) {
                ConceptFile c = loaded.get(j);
                Path file = concepts.get(j);
                c.checkShapes(file, sd.textEncoder.config().hiddenSize(), AppliedConcepts.layerDims(sd));
                if (force) {
                    warnForced(file, c, sd, progress);
                } else {
                    try {
                        c.checkMadeFor(file, sd.unetHash(), sd.textEncoderHash());
                    } catch (IllegalArgumentException e) {
                        throw new IllegalArgumentException(e.getMessage() + "; --force uses it anyway", e);
                    }
                }
            }
            CovarianceFile.Loaded cInv = covariance.cInv(model, sd, CovarianceCache.DEFAULT_CAPTIONS, progress);
            warnOtherCovariance(loaded, cInv, progress);
            applied = AppliedConcepts.apply(sd, cInv.cInv(), uses, approximate ? ConceptGate.Orthogonalization.APPROXIMATE
                    : ConceptGate.Orthogonalization.EXACT, globalLock);
            warnAbsentWords(applied, progress);
        }
        PromptEncoder encoder = applied != null ? applied : sd::encodePrompts;
        // each picture encodes its prompt again: say a prompt's warnings (truncation) once
        Progress saysOnce = new OnceEachMessage(progress);
        try (Scope scope = Scope.inference()) {
            if (betaSweep != null) {
                sweep(sd, applied, targets.get(0), progress);
            } else {
                Tensor given = initLatents != null ? readInitLatents(latentShape) : null;
                int i = 0;
                for (String prompt : prompts) {
                    TextToImage.Request request = new TextToImage.Request(prompt, negativePrompt, guidance, steps, scheduler.id, width, height);
                    for (int k = 0; k < count; k++, i++) {
                        long imageSeed = seed + k;
                        TextToImage.Generated picture = given != null
                                ? TextToImage.generate(sd, encoder, request, given, imageSeed, saysOnce)
                                : TextToImage.generate(sd, encoder, request, imageSeed, saysOnce);
                        if (saveLatents != null) {
                            Npy.writeFloats(total == 1 ? saveLatents : numbered(saveLatents, i), picture.latents(), picture.latentShape());
                        }
                        Png.write(targets.get(i), picture.image(), Map.of("parameters", parameters(sd, uses, prompt, imageSeed)));
                        progress.message("wrote " + targets.get(i));
                    }
                }
            }
        } finally {
            if (applied != null) applied.close();
        }
        progress.message(String.format(Locale.ROOT, "done in %.1fs", (System.nanoTime() - started) / 1e9));
        return 0;
    }


    /** One grid: a row per prompt, a column per beta, every cell from the same seed. */
    private void sweep(StableDiffusion sd, AppliedConcepts applied, Path target, TerminalProgress progress) throws java.io.IOException {
        TextToImage.Request request = new TextToImage.Request(prompts.get(0), negativePrompt, guidance, steps, scheduler.id, width, height);
        BufferedImage grid = BetaSweep.grid(sd, applied, prompts, betaSweep, request, seed, progress);
        Png.write(target, grid, Map.of("parameters", "beta sweep " + betaSweep + " of " + concepts + ", seed " + seed));
        progress.message("wrote " + target);
    }

    /** Passes progress on, each distinct message once. */
    private static final class OnceEachMessage implements Progress {
        private final Progress inner;
        private final Set<String> said = new HashSet<>();

        OnceEachMessage(Progress inner) { this.inner = inner; }

        @Override
        public void update(String task, long done, long total, String detail) { inner.update(task, done, total, detail); }

        @Override
        public void message(String text) {
            if (said.add(text)) inner.message(text);
        }
    }

    /** --force lets a concept made for another model through; say which of its hashes differ from this model's. */
    private static void warnForced(Path file, ConceptFile c, StableDiffusion sd, TerminalProgress progress) {
        List<String> differ = new ArrayList<>();
        if (!c.baseModelHash().equals(sd.unetHash())) {
            differ.add("UNet (its hash " + c.baseModelHash() + ", this model's " + sd.unetHash() + ")");
        }
        if (!c.textEncoderHash().equals(sd.textEncoderHash())) {
            differ.add("text encoder (its hash " + c.textEncoderHash() + ", this model's " + sd.textEncoderHash() + ")");
        }
        if (differ.isEmpty()) return;
        progress.message("warning: " + file + ": concept '" + c.word() + "' was made for another " + String.join(" and another ", differ)
                + "; used anyway because of --force, its results may be poor");
    }

    /** A concept trained with another C^-1 than this run's: its edit assumed that one. */
    private void warnOtherCovariance(List<ConceptFile> loaded, CovarianceFile.Loaded cInv, TerminalProgress progress) {
        for (int j = 0; j < loaded.size(); j++) {
            String trained = loaded.get(j).settings().get(ConceptTrainer.COVARIANCE_SETTING);
            if (trained != null && !trained.equals(cInv.provenance())) {
                progress.message("warning: " + concepts.get(j) + ": concept '" + loaded.get(j).word() + "' was trained with C^-1 from "
                        + trained + "; this run uses " + cInv.provenance() + " (the --covariance it was trained with gives the same)");
            }
        }
    }

    /** A concept whose word a prompt does not hold has no effect on it: say so, once per prompt. */
    private void warnAbsentWords(AppliedConcepts applied, TerminalProgress progress) {
        for (String prompt : prompts) {
            for (ConceptFile c : applied.absentFrom(prompt)) {
                progress.message("warning: the prompt \"" + prompt + "\" does not contain the concept word '" + c.word()
                        + "': the concept has no effect on it");
            }
        }
    }

    private List<AppliedConcepts.Use> uses(List<ConceptFile> loaded) {
        int n = loaded.size();
        if (betas.size() > 1 && betas.size() != n) throw new IllegalArgumentException("--beta: give one value or one per --concept (" + n + ")");
        if (taus.size() > 1 && taus.size() != n) throw new IllegalArgumentException("--tau: give one value or one per --concept (" + n + ")");
        List<AppliedConcepts.Use> out = new ArrayList<>();
        for (int j = 0; j < n; j++) {
            double beta = betas.isEmpty() ? loaded.get(j).beta() : betas.get(betas.size() == 1 ? 0 : j);
            double tau = taus.isEmpty() ? loaded.get(j).tau() : taus.get(taus.size() == 1 ? 0 : j);
            out.add(new AppliedConcepts.Use(loaded.get(j), beta, tau));
        }
        return out;
    }

    private Path sweepTarget() throws java.io.IOException {
        Path target = out.toString().toLowerCase(Locale.ROOT).endsWith(".png") ? out : out.resolve("beta-sweep.png");
        FileChecks.writableFolder(target.toAbsolutePath().getParent());
        return target;
    }

    private Tensor readInitLatents(long[] expected) throws java.io.IOException {
        Tensor t = Npy.readTensor(initLatents);
        if (!Arrays.equals(Ops.shape(t), expected)) {
            throw new IllegalArgumentException(initLatents + ": initial latents have shape " + Ops.shapeString(t)
                    + ", but " + width + "x" + height + " needs " + Arrays.toString(expected));
        }
        return t;
    }

    /** Where each image goes; checked before any work so an unwritable output fails fast. */
    private List<Path> targets(int total) throws java.io.IOException {
        List<Path> paths = new ArrayList<>();
        boolean single = out.toString().toLowerCase(Locale.ROOT).endsWith(".png");
        if (single && total > 1) {
            for (int i = 0; i < total; i++) paths.add(numbered(out, i));
        } else if (single) {
            paths.add(out);
        } else {
            for (int i = 0; i < total; i++) paths.add(out.resolve(String.format(Locale.ROOT, "%05d-%d.png", i, seed + i % count)));
        }
        FileChecks.writableFolder(paths.get(0).toAbsolutePath().getParent());
        return paths;
    }

    private static Path numbered(Path p, int i) {
        String name = p.getFileName().toString();
        int dot = name.lastIndexOf('.');
        String stem = dot > 0 ? name.substring(0, dot) : name, ext = dot > 0 ? name.substring(dot) : "";
        return p.resolveSibling(stem + "-" + i + ext);
    }

    /** The PNG's parameters text; each concept's gate as it was applied. */
    private String parameters(StableDiffusion sd, List<AppliedConcepts.Use> uses, String prompt, long imageSeed) {
        List<GenerationParameters.AppliedGate> gates = new ArrayList<>();
        for (int j = 0; j < uses.size(); j++) {
            gates.add(new GenerationParameters.AppliedGate(concepts.get(j).getFileName().toString(), uses.get(j).beta(), uses.get(j).tau()));
        }
        String seedText = initLatents != null ? "init-latents " + initLatents.getFileName() : Long.toString(imageSeed);
        return new GenerationParameters(prompt, negativePrompt, steps, scheduler.id, guidance, seedText, width, height, sd.name,
                gates, globalLock).text();
    }
}
