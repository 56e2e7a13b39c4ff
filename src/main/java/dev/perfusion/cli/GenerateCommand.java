package dev.perfusion.cli;

import dev.perfusion.io.Npy;
import dev.perfusion.io.Png;
import dev.perfusion.perfusion.Concept;
import dev.perfusion.perfusion.ConceptFile;
import dev.perfusion.perfusion.ConceptGeneration;
import dev.perfusion.perfusion.CovarianceCache;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.sampling.Schedulers;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "generate", mixinStandardHelpOptions = true,
        description = {"Generate images from a text prompt.",
                "Seeds are reproducible within this project on any machine and device; they cannot match torch's "
                        + "random generator, so the same seed gives other images in other tools (use --init-latents "
                        + "to feed exact initial noise)."})
final class GenerateCommand implements Callable<Integer> {
    @Spec CommandSpec spec;
    @Mixin ModelOptions model;
    @Mixin CovarianceOptions covariance;

    @Option(names = "--prompt", required = true, description = "What to draw; repeat for several prompts.") List<String> prompts;
    @Option(names = "--concept", paramLabel = "FILE", description = "A learned concept file (repeatable: concepts combine). Use its word in the prompt.") List<Path> concepts = new ArrayList<>();
    @Option(names = "--beta", split = ",", description = "Concept gate threshold(s): one for all or one per concept; lower = more concept, higher = more prompt (default: each file's, 0.7).") List<Double> betas = new ArrayList<>();
    @Option(names = "--tau", split = ",", description = "Concept gate temperature(s) (default: each file's, 0.15).") List<Double> taus = new ArrayList<>();
    @Option(names = "--global-lock", description = "Global key locking: keys see the prompt with each concept word replaced by its supercategory (try beta 0.4-0.6).") boolean globalLock;
    @Mixin ConceptStartOption conceptStart;
    @Mixin SideSteeringOption sideSteering;
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
    @Option(names = "--out", defaultValue = "out", description = "A .png path (one image) or a folder, where pictures are numbered on from those there "
            + "(NNNNN-SEED.png; default: ${DEFAULT-VALUE}).") Path out;
    @Option(names = "--attention-maps", description = "Also write NAME-attention.png beside each picture: where its pixels read "
            + "each token of the prompt (cross-attention averaged over heads, layers and denoising steps), and print each token's "
            + "mean attention on the picture and on its left and right halves. Pictures are then drawn one at a time, and "
            + "can differ from those drawn without by float rounding.") boolean attentionMaps;
    @Option(names = "--attention-words", split = ",", paramLabel = "W1,W2,...", description = "With --attention-maps: also print how "
            + "much each pair of these tokens' maps overlap (1: the same pixels read both; 0: none does), per picture and on "
            + "average (default: the concepts' words).") List<String> attentionWords;
    @Option(names = "--init-latents", paramLabel = "FILE.npy",
            description = "Unit-variance initial noise [1, C, h, w] (what diffusers' latents= takes); replaces the seed's initial noise "
                    + "(euler-a's noise at each step still comes from --seed).") Path initLatents;
    @Option(names = "--save-latents", paramLabel = "FILE.npy",
            description = "Write the final latents (float32, before VAE decoding, not divided by the scaling factor).") Path saveLatents;

    @Override
    public Integer call() throws Exception {
        if (count < 1) throw new IllegalArgumentException("--count must be at least 1, got " + count);
        int total = count * prompts.size();
        if (initLatents != null && total != 1) throw new IllegalArgumentException("--init-latents gives one image: use one --prompt and --count 1");
        if (betaSweep != null && concepts.isEmpty()) throw new IllegalArgumentException("--beta-sweep needs at least one --concept");
        if (concepts.isEmpty()) {
            List<String> conceptOnly = java.util.stream.Stream.of("--beta", "--tau", "--global-lock", "--approximate", "--force", "--covariance",
                    "--concept-start").filter(spec.commandLine().getParseResult()::hasMatchedOption).toList();
            if (!conceptOnly.isEmpty()) {
                throw new IllegalArgumentException(String.join(", ", conceptOnly) + (conceptOnly.size() == 1 ? " sets" : " set")
                        + " how concepts are drawn, and no --concept is given: the picture would be the base model's");
            }
        }
        if (betaSweep != null && (initLatents != null || saveLatents != null || count != 1)) {
            throw new IllegalArgumentException("--beta-sweep draws one grid from --seed: not with --init-latents, --save-latents or --count");
        }
        if (attentionWords != null && !attentionMaps) throw new IllegalArgumentException("--attention-words needs --attention-maps");
        if (attentionMaps && (betaSweep != null || initLatents != null)) throw new IllegalArgumentException("--attention-maps draws pictures from seeds: not with --beta-sweep or --init-latents");
        if (steps < 1) throw new IllegalArgumentException("--steps must be at least 1, got " + steps);
        if (!(guidance >= 0)) throw new IllegalArgumentException("--guidance must be at least 0, got " + guidance);
        Flags.named("--negative-prompt", () -> ConceptGeneration.Settings.checkNegativePrompt(negativePrompt, guidance));
        for (double b : betas) Flags.named("--beta", () -> Concept.checkBeta(b));
        for (double t : taus) Flags.named("--tau", () -> Concept.checkTau(t));
        if (betaSweep != null) for (double b : betaSweep) Flags.named("--beta-sweep", () -> Concept.checkBeta(b));
        double start = conceptStart.check();
        double steering = sideSteering.check();
        covariance.check();
        if (initLatents != null && !Files.isRegularFile(initLatents)) {
            throw new IllegalArgumentException("--init-latents " + initLatents + ": " + (Files.isDirectory(initLatents) ? "a folder" : "no such file")
                    + "; give a .npy file of initial latents");
        }
        if (saveLatents != null) {
            if (Files.isDirectory(saveLatents)) throw new IllegalArgumentException("--save-latents " + saveLatents + " is a folder; give a file name such as latents.npy");
            FileChecks.writableFolder(saveLatents.toAbsolutePath().getParent());
        }
        List<ConceptGeneration.Choice> choices = choices();
        List<Path> targets = betaSweep != null ? List.of(sweepTarget()) : targets(total);
        TerminalProgress progress = new TerminalProgress(System.out);
        long started = System.nanoTime();
        StableDiffusion sd = model.load(progress);
        ConceptGeneration.Settings settings = Flags.named("--width and --height", () -> new ConceptGeneration.Settings(negativePrompt,
                guidance, steps, scheduler.id, width, height, globalLock, approximate, start, steering).forModel(sd));
        try (ConceptGeneration generation = open(sd, choices, settings, progress);
             Scope scope = Scope.inference()) {
            if (betaSweep != null) {
                write(targets.get(0), generation.sweep(prompts, betaSweep, seed), progress);
            } else {
                ConceptGeneration.PictureSink save = (i, picture) -> {
                    if (saveLatents != null) {
                        Npy.writeFloats(total == 1 ? saveLatents : numbered(saveLatents, firstNumber + i), picture.generated().latents(), picture.generated().latentShape());
                    }
                    write(targets.get(i), picture, progress);
                };
                if (initLatents != null) {
                    Tensor given = readInitLatents(generation.latentShape(), generation.width(), generation.height());
                    // an ancestral sampler's step noise still comes from --seed: the picture's record says so
                    String noise = "init-latents " + initLatents.getFileName() + (scheduler == Schedulers.Kind.EULER_A ? ", step noise seed " + seed : "");
                    save.accept(0, generation.draw(prompts.get(0), given, noise, seed));
                } else {
                    List<String> each = new ArrayList<>();
                    List<Long> seeds = new ArrayList<>();
                    for (String prompt : prompts) {
                        for (int k = 0; k < count; k++) {
                            each.add(prompt);
                            seeds.add(seed + k);
                        }
                    }
                    if (attentionMaps) {
                        drawWithAttention(generation, choices, each, seeds, targets, save, progress);
                    } else {
                        generation.drawEach(each, seeds, save);
                    }
                }
            }
        }
        progress.message(String.format(Locale.ROOT, "done in %.1fs", (System.nanoTime() - started) / 1e9));
        return 0;
    }

    /**
     * Each picture with its attention maps, one at a time: NAME-attention.png beside it, the per-token table, and the
     * overlap of each pair of --attention-words (or concept words) in it; at the end each pair's mean over the pictures.
     */
    private void drawWithAttention(ConceptGeneration generation, List<ConceptGeneration.Choice> choices, List<String> each, List<Long> seeds,
                                   List<Path> targets, ConceptGeneration.PictureSink save, TerminalProgress progress) throws java.io.IOException {
        List<String> words = attentionWords != null ? attentionWords : choices.stream().map(c -> c.concept().word()).toList();
        java.util.Map<String, List<Double>> overlaps = new java.util.LinkedHashMap<>();
        for (int i = 0; i < each.size(); i++) {
            ConceptGeneration.AttentionPicture drawn = generation.drawWithAttention(each.get(i), seeds.get(i));
            save.accept(i, drawn.picture());
            Path maps = suffixed(targets.get(i), "-attention");
            Png.write(maps, drawn.attention().image(drawn.picture().image(), 96), drawn.picture().pngText());
            StringBuilder text = new StringBuilder("wrote " + maps + ": where the picture reads each token of \"" + each.get(i) + "\"\n");
            text.append(drawn.attention().table().stripTrailing());
            drawn.attention().overlaps(words).forEach((pair, o) -> {
                overlaps.computeIfAbsent(pair, k -> new ArrayList<>()).add(o);
                text.append(String.format(Locale.ROOT, "%noverlap of the maps of %s: %.3f", pair, o));
            });
            for (String w : words) {
                if (drawn.attention().positionOf(w) < 0) text.append("\n'").append(w).append("' is not a token of this prompt");
            }
            progress.message(text.toString());
        }
        overlaps.forEach((pair, values) -> progress.message(String.format(Locale.ROOT, "overlap of the maps of %s over %d pictures: mean %.3f (%.3f-%.3f)",
                pair, values.size(), values.stream().mapToDouble(d -> d).average().orElse(0),
                values.stream().mapToDouble(d -> d).min().orElse(0), values.stream().mapToDouble(d -> d).max().orElse(0))));
    }

    private ConceptGeneration open(StableDiffusion sd, List<ConceptGeneration.Choice> choices, ConceptGeneration.Settings settings,
                                   TerminalProgress progress) throws java.io.IOException {
        try {
            return ConceptGeneration.open(sd, choices, settings, force,
                    () -> covariance.cInv(model, sd, CovarianceCache.DEFAULT_CAPTIONS, progress), progress);
        } catch (ConceptFile.MadeForAnotherModel e) {
            throw new IllegalArgumentException(e.getMessage() + "; --force uses it anyway", e);
        }
    }

    private static void write(Path target, ConceptGeneration.Picture picture, TerminalProgress progress) throws java.io.IOException {
        Png.write(target, picture.image(), picture.pngText());
        progress.message("wrote " + target);
    }

    /** Each --concept with its beta and tau: one value for all, one per concept, or none (the file's own). */
    private List<ConceptGeneration.Choice> choices() throws java.io.IOException {
        int n = concepts.size();
        if (betas.size() > 1 && betas.size() != n) throw new IllegalArgumentException("--beta: give one value or one per --concept (" + n + ")");
        if (taus.size() > 1 && taus.size() != n) throw new IllegalArgumentException("--tau: give one value or one per --concept (" + n + ")");
        List<ConceptGeneration.Choice> out = new ArrayList<>();
        for (int j = 0; j < n; j++) {
            Double beta = betas.isEmpty() ? null : betas.get(betas.size() == 1 ? 0 : j);
            Double tau = taus.isEmpty() ? null : taus.get(taus.size() == 1 ? 0 : j);
            out.add(new ConceptGeneration.Choice(concepts.get(j), FileChecks.concept(concepts.get(j)), beta, tau));
        }
        return out;
    }

    private Path sweepTarget() throws java.io.IOException {
        Path target = namesAPicture(out) ? out : out.resolve("beta-sweep.png");
        FileChecks.writableFolder(target.toAbsolutePath().getParent());
        return target;
    }

    private Tensor readInitLatents(long[] expected, int width, int height) throws java.io.IOException {
        Tensor t = Npy.readTensor(initLatents);
        if (!Arrays.equals(Ops.shape(t), expected)) {
            throw new IllegalArgumentException(initLatents + ": initial latents have shape " + Ops.shapeString(t)
                    + ", but " + width + "x" + height + " needs " + Arrays.toString(expected));
        }
        if (!Ops.allFinite(t)) throw new IllegalArgumentException(initLatents + ": the initial latents hold NaN or infinite values");
        return t;
    }

    /** Where each image goes; checked before any work so an unwritable output fails fast. */
    private List<Path> targets(int total) throws java.io.IOException {
        List<Path> paths = new ArrayList<>();
        boolean single = namesAPicture(out);
        if (single && total > 1) {
            for (int i = 0; i < total; i++) paths.add(numbered(out, i));
        } else if (single) {
            paths.add(out);
        } else {
            firstNumber = nextNumber(out); // numbered on from the folder's pictures: a second run adds to the first's, not over them
            for (int i = 0; i < total; i++) paths.add(out.resolve(String.format(Locale.ROOT, "%05d-%d.png", firstNumber + i, seed + i % count)));
        }
        FileChecks.writableFolder(paths.get(0).toAbsolutePath().getParent());
        return paths;
    }

    /** The number of the first picture in an --out folder (the pictures there before come first); latents are numbered alike. */
    private int firstNumber;

    /** One past the highest number of a NNNNN-SEED.png picture (or its -attention.png) in {@code folder}; 0 where it has none. */
    static int nextNumber(Path folder) throws java.io.IOException {
        if (!Files.isDirectory(folder)) return 0;
        java.util.regex.Pattern numbered = java.util.regex.Pattern.compile("(\\d{5,9})-(-?\\d{1,20})(-attention)?\\.png");
        try (java.util.stream.Stream<Path> files = Files.list(folder)) {
            return files.map(f -> numbered.matcher(f.getFileName().toString())).filter(java.util.regex.Matcher::matches)
                    .mapToInt(m -> Integer.parseInt(m.group(1)) + 1).max().orElse(0);
        }
    }

    /** Whether --out names a picture: a .png path that is not a folder already (an existing folder is written into). */
    private static boolean namesAPicture(Path out) {
        return out.toString().toLowerCase(Locale.ROOT).endsWith(".png") && !Files.isDirectory(out);
    }

    private static Path numbered(Path p, int i) {
        return suffixed(p, "-" + i);
    }

    /** {@code p} with {@code suffix} before its extension. */
    private static Path suffixed(Path p, String suffix) {
        String name = p.getFileName().toString();
        int dot = name.lastIndexOf('.');
        String stem = dot > 0 ? name.substring(0, dot) : name, ext = dot > 0 ? name.substring(dot) : "";
        return p.resolveSibling(stem + suffix + ext);
    }
}
