package dev.perfusion.perfusion;

import dev.perfusion.pipeline.CrossAttentionMaps;
import dev.perfusion.pipeline.GenerationParameters;
import dev.perfusion.pipeline.PromptEncoder;
import dev.perfusion.pipeline.SideSteering;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.pipeline.TextToImage;
import dev.perfusion.pipeline.WordAttention;
import dev.perfusion.sampling.Schedulers;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.tensor.Threads;
import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.util.Progress;
import org.bytedeco.pytorch.Tensor;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Text-to-image with zero or more concepts applied: the one recipe that {@code generate}, the web app's generate
 * jobs and the demo run. {@link #open} checks that every concept fits the model, installs them ({@link AppliedConcepts}) and says
 * what a user should know (a concept made for another model, another C^-1 than it was trained with, a prompt without
 * its word); each picture is drawn by {@link TextToImage#generate} and carries its {@link GenerationParameters};
 * {@link #close} restores the model.
 */
public final class ConceptGeneration implements AutoCloseable {
    /** A concept to apply: its file (named in errors and in the pictures' parameters), beta and tau (null: the file's own). */
    public record Choice(Path file, ConceptFile concept, Double beta, Double tau) {
        AppliedConcepts.Use use() {
            return new AppliedConcepts.Use(concept, beta != null ? beta : concept.beta(), tau != null ? tau : concept.tau());
        }
    }

    /**
     * What every picture shares; a width or height of 0 is the model's native size.
     *
     * @param conceptStart the fraction of the denoising steps drawn by the base model with each concept's supercategory
     *                     word before the concepts take over ({@link AppliedConcepts#startingAt}; 0: the paper's)
     * @param sideSteering how strongly each object is drawn on the side its prompt puts it ({@link SideSteering}; 0: not)
     */
    public record Settings(String negativePrompt, double guidance, int steps, String scheduler, int width, int height,
                           boolean globalLock, boolean approximate, double conceptStart, double sideSteering) {
        public Settings {
            Concept.checkConceptStart(conceptStart);
            SideSteering.checkStrength(sideSteering);
            checkNegativePrompt(negativePrompt, guidance);
        }

        /** A negative prompt acts through classifier-free guidance, which is off at a guidance of 1 and below. */
        public static void checkNegativePrompt(String negativePrompt, double guidance) {
            if (negativePrompt != null && !negativePrompt.isBlank() && !(guidance > 1)) {
                throw new IllegalArgumentException("a negative prompt acts through classifier-free guidance, which is off at guidance "
                        + guidance + " (1 or below): raise the guidance or leave the negative prompt out");
            }
        }

        /** These settings with the size {@code sd} draws in place of 0; an error says which sizes it can draw. */
        public Settings forModel(StableDiffusion sd) {
            int nativeSize = sd.pictureSize();
            int w = width == 0 ? nativeSize : width, h = height == 0 ? nativeSize : height;
            TextToImage.latentShape(sd, w, h);
            return new Settings(negativePrompt, guidance, steps, scheduler, w, h, globalLock, approximate, conceptStart, sideSteering);
        }
    }

    /** Where C^-1 comes from; asked only when a concept is applied (computing it can take a while). */
    @FunctionalInterface
    public interface CovarianceSource {
        CovarianceFile.Loaded get() throws IOException;
    }

    private final StableDiffusion sd;
    private final List<Choice> choices;
    private final TextToImage.Request request;
    private final boolean globalLock;
    private final double conceptStart;
    private final AppliedConcepts applied;
    private final Progress progress;

    private ConceptGeneration(StableDiffusion sd, List<Choice> choices, TextToImage.Request request, Settings settings,
                              AppliedConcepts applied, Progress progress) {
        this.sd = sd;
        this.choices = List.copyOf(choices);
        this.request = request;
        this.globalLock = settings.globalLock() && applied != null && applied.gate() != null; // recorded only where it applies
        this.conceptStart = settings.conceptStart();
        this.applied = applied;
        this.progress = progress;
    }

    /**
     * Checks the settings and concepts against {@code sd} ({@link ConceptFile#checkFits}; a concept made for another
     * model throws {@link ConceptFile.MadeForAnotherModel}) and installs the concepts. {@code force} lets a concept made
     * for another model of the same shapes through, with a warning naming which part differs.
     */
    public static ConceptGeneration open(StableDiffusion sd, List<Choice> choices, Settings settings, boolean force,
                                         CovarianceSource covariance, Progress progress) throws IOException {
        Settings s = settings.forModel(sd);
        // a step count or scheduler config the sampler refuses fails here, not after C^-1 and the concepts
        Schedulers.create(s.scheduler(), sd.schedulerConfig).setTimesteps(s.steps());
        TextToImage.Request request = new TextToImage.Request(List.of(""), s.negativePrompt(), s.guidance(), s.steps(), s.scheduler(), s.width(), s.height(), s.sideSteering());
        Progress saysOnce = new OnceEachMessage(progress);
        if (choices.isEmpty()) return new ConceptGeneration(sd, choices, request, s, null, saysOnce);
        List<AppliedConcepts.Use> uses = new ArrayList<>();
        for (Choice c : choices) {
            c.concept().checkFits(c.file(), sd.unetHash(), sd.textEncoderHash(), sd.clipSkip(), sd.textEncoder.config().hiddenSize(),
                    AppliedConcepts.layerDims(sd), force);
            if (force) warnMadeForAnother(c, sd, saysOnce);
            if ((c.beta() != null || c.tau() != null) && !c.concept().edit().kind().equals(ProjectionEdit.Kind.GATED_RANK_ONE)) {
                saysOnce.message("warning: " + c.file() + ": concept '" + c.concept().word() + "' (edit " + c.concept().edit().kind().id
                        + ") has no gate, so beta and tau change nothing in it");
            }
            uses.add(c.use());
        }
        CovarianceFile.Loaded cInv = covariance.get();
        warnOtherCovariance(choices, cInv, saysOnce);
        AppliedConcepts applied = AppliedConcepts.apply(sd, cInv.cInv(), uses, s.approximate()
                ? ConceptGate.Orthogonalization.APPROXIMATE : ConceptGate.Orthogonalization.EXACT, s.globalLock());
        if (s.globalLock() && applied.gate() == null) {
            saysOnce.message("warning: global key locking locks the keys of rank-one edits, and none of these concepts has one "
                    + "(" + choices.stream().map(c -> c.concept().word() + ": " + c.concept().edit().kind().id).collect(java.util.stream.Collectors.joining(", "))
                    + "), so it changes nothing");
        }
        return new ConceptGeneration(sd, choices, request, s, applied, saysOnce);
    }

    public int width() { return request.width(); }

    public int height() { return request.height(); }

    /** The shape of one picture's initial noise. */
    public long[] latentShape() { return TextToImage.latentShape(sd, request.width(), request.height()); }

    /** One picture of {@code prompt} from the noise of {@code seed}. */
    public Picture draw(String prompt, long seed) {
        return draw(prompt, seed, progress);
    }

    private Picture draw(String prompt, long seed, Progress steps) {
        warnAbsentWords(prompt);
        TextToImage.Generated g = TextToImage.generate(sd, encoder(), request.withPrompt(prompt), seed, steps);
        return new Picture(g.image(), g, parameters(prompt, Long.toString(seed), gates()));
    }

    /**
     * One picture of {@code prompt} from the noise of {@code seed}, and where its pixels read each token of the prompt
     * ({@link CrossAttentionMaps}). The observed attention computes without the fused kernel, so the picture can differ
     * from {@link #draw}'s by float rounding.
     */
    public AttentionPicture drawWithAttention(String prompt, long seed) {
        long[] latent = latentShape();
        try (Scope scope = Scope.inference();
             CrossAttentionMaps maps = CrossAttentionMaps.observe(1, latent[2], latent[3])) {
            Picture picture = draw(prompt, seed, progress);
            ClipTokenizer tokenizer = applied != null ? applied.tokenizer() : sd.tokenizer;
            long[] ids = Ops.toLongs(sd.tokenize(tokenizer, List.of(prompt), w -> {}));
            return new AttentionPicture(picture, WordAttention.of(maps.mean(), tokenizer.positionNames(ids)));
        }
    }

    /** A picture and where its pixels read each token of its prompt. */
    public record AttentionPicture(Picture picture, WordAttention attention) {}

    /** Takes each picture of {@link #drawEach} as it comes, in order (a command writes it at once). */
    public interface PictureSink {
        void accept(int index, Picture picture) throws IOException;
    }

    /**
     * Picture i of {@code prompts.get(i)} from the noise of {@code seeds.get(i)}, each handed to {@code sink} in order.
     * A small model's are drawn side by side, one per thread, each exactly as alone; the first of each side-by-side
     * group reports its denoising steps (and so a cancelled job stops there), the others only their messages.
     */
    public void drawEach(List<String> prompts, List<Long> seeds, PictureSink sink) throws IOException {
        int n = prompts.size();
        int workers = sd.sideBySideWorkers(n);
        if (workers == 1) {
            for (int i = 0; i < n; i++) sink.accept(i, draw(prompts.get(i), seeds.get(i)));
            return;
        }
        Progress messagesOnly = Progress.messagesOnly(progress);
        try (Threads.SideBySide side = Threads.sideBySide(workers, "pictures")) {
            for (int first = 0; first < n; first += workers) {
                int from = first;
                List<Picture> drawn = side.run(Math.min(workers, n - first),
                        k -> draw(prompts.get(from + k), seeds.get(from + k), k == 0 ? progress : messagesOnly));
                for (int k = 0; k < drawn.size(); k++) sink.accept(from + k, drawn.get(k));
            }
        }
    }

    /** One picture of {@code prompt} from given initial noise; {@code noiseName} stands for the seed in its parameters. */
    public Picture draw(String prompt, Tensor initialNoise, String noiseName, long seed) {
        warnAbsentWords(prompt);
        TextToImage.Generated g = TextToImage.generate(sd, encoder(), request.withPrompt(prompt), initialNoise, seed, progress);
        return new Picture(g.image(), g, parameters(prompt, noiseName, gates()));
    }

    /** A {@link BetaSweep} grid of {@code prompts} by {@code betas}; its parameters name the sweep and the first prompt's settings. */
    public Picture sweep(List<String> prompts, List<Double> betas, long seed) {
        if (applied == null) throw new IllegalArgumentException("a beta sweep needs at least one concept");
        if (applied.gate() != null && choices.stream().noneMatch(c -> c.concept().edit().kind().equals(ProjectionEdit.Kind.GATED_RANK_ONE))) {
            // without any edit at all BetaSweep refuses; an ungated rank-one edit draws, but alike at every beta
            progress.message("warning: none of the concepts has a gate, so every beta draws the same picture");
        }
        prompts.forEach(this::warnAbsentWords);
        BufferedImage grid = BetaSweep.grid(sd, applied, conceptStart, prompts, betas, request, seed, progress);
        // every concept takes each column's beta: the gates are the sweep's, not one per concept
        GenerationParameters p = parameters(prompts.get(0), Long.toString(seed), List.of());
        String text = "Beta sweep: " + betas + " of " + gates().stream().map(GenerationParameters.AppliedGate::file).toList() + "\n" + p.text();
        return new Picture(grid, null, p, text);
    }

    /**
     * A picture and what it was made with.
     *
     * @param generated its latents (null for a sweep's grid)
     * @param text      its PNG's {@code parameters} chunk
     */
    public record Picture(BufferedImage image, TextToImage.Generated generated, GenerationParameters parameters, String text) {
        Picture(BufferedImage image, TextToImage.Generated generated, GenerationParameters parameters) {
            this(image, generated, parameters, parameters.text());
        }

        /** The PNG text chunks of this picture. */
        public Map<String, String> pngText() { return Map.of("parameters", text); }
    }

    @Override
    public void close() {
        if (applied != null) applied.close();
    }

    private PromptEncoder encoder() {
        return applied != null ? applied.startingAt(conceptStart) : sd::encodePrompts;
    }

    private List<GenerationParameters.AppliedGate> gates() {
        List<GenerationParameters.AppliedGate> gates = new ArrayList<>();
        for (Choice c : choices) {
            AppliedConcepts.Use u = c.use();
            gates.add(new GenerationParameters.AppliedGate(c.file().getFileName().toString(), u.beta(), u.tau()));
        }
        return gates;
    }

    private GenerationParameters parameters(String prompt, String seed, List<GenerationParameters.AppliedGate> gates) {
        return new GenerationParameters(prompt, request.negativePrompt(), request.steps(), request.scheduler(), request.guidance(), seed,
                request.width(), request.height(), sd.name, gates, globalLock, applied != null ? conceptStart : 0, request.sideSteering());
    }

    /** A concept whose word the prompt does not hold, or holds past the tokens the model reads, has no effect on it: said once per prompt. */
    private void warnAbsentWords(String prompt) {
        if (applied == null) return;
        ClipTokenizer tokenizer = applied.tokenizer();
        for (ConceptFile c : applied.absentFrom(prompt)) {
            int id = tokenizer.tokenId(c.word()).orElseThrow();
            boolean cut = java.util.Arrays.stream(tokenizer.encode(prompt)).anyMatch(t -> t == id);
            progress.message(cut
                    ? "warning: the concept word '" + c.word() + "' comes after the first " + (tokenizer.maxLength() - 2) + " tokens of the prompt \""
                            + prompt + "\", which are all the model reads: the concept has no effect on it; name it earlier in the prompt"
                    : "warning: the prompt \"" + prompt + "\" does not contain the concept word '" + c.word() + "': the concept has no effect on it");
        }
    }

    private static void warnMadeForAnother(Choice c, StableDiffusion sd, Progress progress) {
        List<String> differ = new ArrayList<>();
        ConceptFile f = c.concept();
        if (!f.baseModelHash().equals(sd.unetHash())) {
            differ.add("UNet (its hash " + f.baseModelHash() + ", this model's " + sd.unetHash() + ")");
        }
        if (!f.textEncoderHash().equals(sd.textEncoderHash())) {
            differ.add("text encoder (its hash " + f.textEncoderHash() + ", this model's " + sd.textEncoderHash() + ")");
        }
        if (f.clipSkip() != sd.clipSkip()) differ.add("clip skip (its " + f.clipSkip() + ", this run's " + sd.clipSkip() + ")");
        if (differ.isEmpty()) return;
        progress.message("warning: " + c.file() + ": concept '" + f.word() + "' was made for another " + String.join(" and another ", differ)
                + "; used anyway (forced), its results may be poor");
    }

    /** A concept trained with another C^-1 than this run's: its edit assumed that one. */
    private static void warnOtherCovariance(List<Choice> choices, CovarianceFile.Loaded cInv, Progress progress) {
        for (Choice c : choices) {
            String trained = c.concept().settings().get(ConceptFile.COVARIANCE_SETTING);
            if (trained != null && !trained.equals(cInv.provenance())) {
                progress.message("warning: " + c.file() + ": concept '" + c.concept().word() + "' was trained with C^-1 from "
                        + trained + "; this run uses " + cInv.provenance() + " (the C^-1 it was trained with gives the same as training)");
            }
        }
    }

    /** Passes progress on, each distinct message once: every picture encodes its prompt again (truncation warnings). */
    private static final class OnceEachMessage implements Progress {
        private final Progress inner;
        private final Set<String> said = new HashSet<>();

        OnceEachMessage(Progress inner) { this.inner = inner; }

        @Override
        public void update(String task, long done, long total, String detail) { inner.update(task, done, total, detail); }

        @Override
        public void message(String text) {
            boolean first;
            synchronized (said) { // pictures drawn side by side say theirs at once
                first = said.add(text);
            }
            if (first) inner.message(text);
        }

        @Override
        public void metric(String name, long step, double value) { inner.metric(name, step, value); }

        @Override
        public void wrote(Path file) { inner.wrote(file); }
    }
}
