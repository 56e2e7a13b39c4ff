package dev.perfusion.perfusion;

import dev.perfusion.io.Png;
import dev.perfusion.io.Safetensors;
import dev.perfusion.nn.AdamW;
import dev.perfusion.pipeline.PromptEncoder;
import dev.perfusion.pipeline.SeededNoise;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.pipeline.TextToImage;
import dev.perfusion.sampling.NoiseSchedule;
import dev.perfusion.tensor.NonFiniteException;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.text.ClipTextModel;
import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.unet.Attention;
import dev.perfusion.util.Progress;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * Trains one concept (method notes §4.1): the word embedding v* and one value target o*_V per cross-attention
 * layer, through the frozen text encoder and UNet, with every K target locked to W_K i_super and i* tracked as
 * the 0.99 moving average of the word's encoding. AdamW with separate learning rates for v* and o*_V.
 */
public final class PerfusionTrainer {
    /**
     * What is trained. Perfusion and its ablations write a concept file; textual inversion writes one with the
     * embedding only; the K/V fine-tune (Custom Diffusion's recipe) tunes whole projection matrices, kept in
     * {@link Result#tunedProjections}.
     */
    public enum Method {
        PERFUSION("perfusion"),
        TRAINED_KEYS("trained-keys"),
        /** The edit with the sigmoid gate replaced by s: ROME's closed form, trained end to end. */
        UNGATED_ROME("ungated-rome"),
        TEXTUAL_INVERSION("textual-inversion"),
        KV_FINETUNE("kv-finetune");

        public final String id;

        Method(String id) {
            this.id = id;
        }

        public boolean editsProjections() {
            return this != TEXTUAL_INVERSION && this != KV_FINETUNE;
        }
    }

    /** Training settings; the defaults are the method's (400 steps, effective batch 16, lr 0.006 / 0.03). */
    public record Settings(int steps, int batchSize, int gradientAccumulation, double embeddingLr, double valueLr,
                           double weightDecay, double trainBeta, double trainTau, double iStarDecay, long seed,
                           int viewsPerImage, TrainingImages.Fit fit, int resolution, double maskFloor,
                           Method method, int checkpointEvery, int sampleEvery, boolean attentionMasks) {
        public static Settings defaults() {
            return new Settings(400, 4, 4, 0.006, 0.03, 0.01, 0.75, 0.1, 0.99, 1, 8, TrainingImages.Fit.CROP, 0, 0.1,
                    Method.PERFUSION, 50, 100, false);
        }

        public Settings withSteps(int s) { return new Settings(s, batchSize, gradientAccumulation, embeddingLr, valueLr, weightDecay, trainBeta, trainTau, iStarDecay, seed, viewsPerImage, fit, resolution, maskFloor, method, checkpointEvery, sampleEvery, attentionMasks); }
        public Settings withBatch(int b, int accumulation) { return new Settings(steps, b, accumulation, embeddingLr, valueLr, weightDecay, trainBeta, trainTau, iStarDecay, seed, viewsPerImage, fit, resolution, maskFloor, method, checkpointEvery, sampleEvery, attentionMasks); }
        public Settings withSeed(long s) { return new Settings(steps, batchSize, gradientAccumulation, embeddingLr, valueLr, weightDecay, trainBeta, trainTau, iStarDecay, s, viewsPerImage, fit, resolution, maskFloor, method, checkpointEvery, sampleEvery, attentionMasks); }
        public Settings withImages(TrainingImages.Fit f, int views, int res) { return new Settings(steps, batchSize, gradientAccumulation, embeddingLr, valueLr, weightDecay, trainBeta, trainTau, iStarDecay, seed, views, f, res, maskFloor, method, checkpointEvery, sampleEvery, attentionMasks); }
        public Settings withSchedule(int checkpoints, int samples) { return new Settings(steps, batchSize, gradientAccumulation, embeddingLr, valueLr, weightDecay, trainBeta, trainTau, iStarDecay, seed, viewsPerImage, fit, resolution, maskFloor, method, checkpoints, samples, attentionMasks); }
        public Settings withTrainedKeys(boolean k) { return withMethod(k ? Method.TRAINED_KEYS : Method.PERFUSION); }
        public Settings withMethod(Method m) { return new Settings(steps, batchSize, gradientAccumulation, embeddingLr, valueLr, weightDecay, trainBeta, trainTau, iStarDecay, seed, viewsPerImage, fit, resolution, maskFloor, m, checkpointEvery, sampleEvery, attentionMasks); }

        public Settings withAttentionMasks(boolean a) { return new Settings(steps, batchSize, gradientAccumulation, embeddingLr, valueLr, weightDecay, trainBeta, trainTau, iStarDecay, seed, viewsPerImage, fit, resolution, maskFloor, method, checkpointEvery, sampleEvery, a); }

        Map<String, String> describe() {
            Map<String, String> m = new LinkedHashMap<>();
            m.put("steps", Integer.toString(steps));
            m.put("batch", batchSize + "x" + gradientAccumulation);
            m.put("lr", "embedding " + embeddingLr + ", value targets " + valueLr);
            m.put("gate", method == Method.UNGATED_ROME ? "none (linear)" : "beta " + trainBeta + ", tau " + trainTau);
            m.put("seed", Long.toString(seed));
            m.put("method", method.id);
            m.put("keys", method == Method.TRAINED_KEYS ? "trained (ablation)" : "locked");
            m.put("mask", attentionMasks ? "zero-shot cross-attention" : "files or none");
            return m;
        }
    }

    /**
     * What a training run produced; {@code probeBefore}/{@code probeAfter} are the loss on the same fixed batches
     * (images, timesteps, noise) with the initial and the trained concept, a noise-free measure of progress.
     */
    public record Result(ConceptFile concept, List<Double> losses, double probeBefore, double probeAfter, double seconds,
                         List<Tensor> tunedProjections) {}

    /** Learning rate of whole K/V matrices in the fine-tune baseline. */
    static final double KV_FINETUNE_LR = 1e-4;

    private static final int PROBE_BATCHES = 4;

    /** Prompt templates for the concept word ([C]'s nine). */
    public static final List<String> TEMPLATES = List.of("a photo of a {}", "a good photo of a {}", "the photo of a {}",
            "a good photo of the {}", "image of a {}", "image of the {}", "a photograph of {}", "a {} shown in a photo",
            "a photo of {}");

    private final StableDiffusion sd;
    private final String word;
    private final String supercategory;
    private final Settings settings;
    private final Tensor cInv;
    private final ClipTokenizer tokenizer;
    private final long placeholderId;
    private final long supercategoryId;
    private final List<Attention> layers;
    private final NoiseSchedule schedule;
    private final boolean vPrediction;
    private final List<String> templates;

    private Tensor embedding;
    private Tensor iStar;
    private final List<Tensor> keyTargets = new ArrayList<>();
    private final List<Tensor> valueTargets = new ArrayList<>();
    private ConceptGate gate;
    /** K and V weights of each layer, for the fine-tune baseline only. */
    private final List<Tensor> tuned = new ArrayList<>();

    public PerfusionTrainer(StableDiffusion sd, Tensor cInv, String word, String supercategory, Settings settings) {
        this.sd = sd;
        this.cInv = cInv;
        this.word = word;
        this.supercategory = supercategory;
        this.settings = settings;
        if (settings.steps() < 1 || settings.batchSize() < 1 || settings.gradientAccumulation() < 1) {
            throw new IllegalArgumentException("steps, batch size and gradient accumulation must be at least 1");
        }
        this.supercategoryId = AppliedConcepts.singleToken(sd.tokenizer, supercategory);
        this.tokenizer = sd.tokenizer.withAddedTokens(List.of(word));
        this.placeholderId = tokenizer.tokenId(word).orElseThrow();
        this.layers = sd.unet.crossAttentionLayers();
        this.schedule = new NoiseSchedule(sd.schedulerConfig);
        this.vPrediction = sd.schedulerConfig.predictionType().equals("v_prediction");
        this.templates = templatesFor(sd.tokenizer);
    }

    /**
     * The templates whose words the vocabulary holds whole (all of them for CLIP; the world model knows "a photo of
     * a" but not "a good photo of"): words a model never learned would only blur the concept's encodings.
     */
    static List<String> templatesFor(ClipTokenizer tokenizer) {
        List<String> known = TEMPLATES.stream().filter(t -> java.util.Arrays.stream(t.replace("{}", "").trim().split(" +"))
                .allMatch(w -> tokenizer.tokensOf(w).size() == 1)).toList();
        return known.isEmpty() ? TEMPLATES : known;
    }

    /**
     * Trains and writes the concept file atomically to {@code out}; a checkpoint beside it ({@code out}.ckpt) allows
     * {@code resume}, and sample images go to {@code samplesDir} when set.
     */
    public Result train(Path images, Path masks, Path out, boolean resume, Path samplesDir, Progress progress)
            throws IOException {
        long started = System.nanoTime();
        int resolution = settings.resolution() > 0 ? settings.resolution() : sd.unet.config().sampleSize() * sd.vaeScaleFactor();
        List<TrainingImages.View> views = TrainingImages.views(images, masks, resolution, settings.fit(), settings.viewsPerImage(), settings.seed());
        progress.message("encoding " + views.size() + " augmented views of the training images at " + resolution + "x" + resolution);
        List<Tensor> latents = new ArrayList<>(), latentMasks = new ArrayList<>();
        for (TrainingImages.View v : views) {
            try (Scope s = Scope.inference()) {
                Tensor x0 = sd.vae.latentsFromImage(Png.toTensor(v.image()).to(sd.device, sd.dtype));
                latents.add(Scope.keep(x0));
                long[] ls = Ops.shape(x0);
                Tensor m = settings.attentionMasks() ? AttentionMask.of(sd, x0, supercategory, settings.seed())
                        : Ops.avgPool2d(Ops.fromFloats(v.mask(), 1, 1, resolution, resolution), resolution / ls[2]);
                m = Ops.div(m, Math.max(1e-6, Ops.item(m.max())));
                latentMasks.add(Scope.keep(Ops.add(Ops.mul(m, 1 - settings.maskFloor()), settings.maskFloor()).to(sd.device, sd.dtype)));
            }
        }
        initialise(settings.seed());
        List<AdamW.Group> groups = new ArrayList<>();
        groups.add(new AdamW.Group("embedding", embedding, settings.embeddingLr()));
        for (int l = 0; l < layers.size(); l++) {
            if (settings.method().editsProjections()) groups.add(new AdamW.Group("value." + l, valueTargets.get(l), settings.valueLr()));
            if (settings.method() == Method.TRAINED_KEYS) groups.add(new AdamW.Group("key." + l, keyTargets.get(l), settings.valueLr()));
        }
        for (int i = 0; i < tuned.size(); i++) groups.add(new AdamW.Group("projection." + i, tuned.get(i), KV_FINETUNE_LR));
        AdamW optimizer = new AdamW(groups, settings.weightDecay());
        Path checkpoint = out.resolveSibling(out.getFileName() + ".ckpt");
        int startStep = 0;
        if (resume) startStep = restore(checkpoint, optimizer);
        install();
        List<Double> losses = new ArrayList<>();
        double probeBefore, probeAfter;
        try {
            probeBefore = probe(latents, latentMasks);
            for (int step = startStep; step < settings.steps(); step++) {
                double loss = 0;
                for (int micro = 0; micro < settings.gradientAccumulation(); micro++) {
                    SplittableRandom rng = new SplittableRandom(settings.seed() * 1_000_003L + step * 131L + micro);
                    double microLoss = microStep(rng, latents, latentMasks);
                    if (!Double.isFinite(microLoss)) throw stopped(step + 1, new NonFiniteException("the loss is " + microLoss));
                    loss += microLoss / settings.gradientAccumulation();
                }
                requireFiniteTraining(step + 1, optimizer, true);
                optimizer.step();
                optimizer.zeroGrad();
                requireFiniteTraining(step + 1, optimizer, false);
                losses.add(loss);
                progress.update("training " + word, step + 1, settings.steps(), String.format(java.util.Locale.ROOT, "loss %.4f", loss));
                boolean last = step + 1 == settings.steps();
                if (settings.checkpointEvery() > 0 && (step + 1) % settings.checkpointEvery() == 0 && !last) {
                    saveCheckpoint(checkpoint, optimizer, step + 1);
                }
                if (samplesDir != null && settings.sampleEvery() > 0 && ((step + 1) % settings.sampleEvery() == 0 || last)) {
                    sample(samplesDir.resolve(String.format(java.util.Locale.ROOT, "step-%05d.png", step + 1)), resolution);
                }
            }
            probeAfter = probe(latents, latentMasks);
            if (!Double.isFinite(probeAfter)) {
                throw stopped(settings.steps(), new NonFiniteException("the loss of the trained concept on the fixed batches is " + probeAfter));
            }
        } finally {
            uninstall();
        }
        ConceptFile concept = snapshot();
        concept.save(out);
        Files.deleteIfExists(checkpoint);
        List<Tensor> projections = new ArrayList<>();
        for (Tensor t : tuned) projections.add(Scope.keep(t.detach().clone()));
        return new Result(concept, losses, probeBefore, probeAfter, (System.nanoTime() - started) / 1e9, projections);
    }

    /**
     * Stops training when a gradient ({@code gradients}) or, after the optimizer's step, a trained tensor or i*
     * holds a NaN or an infinity: continuing would only write a concept that draws black pictures.
     */
    private void requireFiniteTraining(int step, AdamW optimizer, boolean gradients) {
        try {
            for (AdamW.Group g : optimizer.groups()) {
                Tensor t = gradients ? g.tensor().grad() : g.tensor();
                if (t.defined()) Ops.requireFinite(t, (gradients ? "the gradient of " : "") + describe(g.name()));
            }
            if (!gradients) Ops.requireFinite(iStar, "the target input i*");
        } catch (NonFiniteException e) {
            throw stopped(step, e);
        }
    }

    private NonFiniteException stopped(int step, NonFiniteException cause) {
        NonFiniteException e = new NonFiniteException("training '" + word + "' stopped at step " + step + " of "
                + settings.steps() + ": " + cause.getMessage() + "; no concept was written");
        e.initCause(cause);
        return e;
    }

    /** An optimizer group's name in the paper's words ("value.3" is the value target o*_V of layer 3). */
    private static String describe(String group) {
        String[] parts = group.split("\\.");
        return switch (parts[0]) {
            case "embedding" -> "the word embedding v*";
            case "value" -> "the value target o*_V of layer " + parts[1];
            case "key" -> "the key target o*_K of layer " + parts[1];
            case "projection" -> "the fine-tuned projection " + parts[1];
            default -> group;
        };
    }

    /** v* from the supercategory's embedding; i_super, o*_K and o*_V from its encodings over the templates. */
    private void initialise(long seed) {
        try (Scope s = Scope.inference()) {
            Tensor table = sd.textEncoder.tokenEmbedding().weight.t();
            embedding = Scope.keep(table.select(0, supercategoryId).detach().clone().set_requires_grad(true));
            List<String> prompts = new ArrayList<>();
            for (String t : templates) prompts.add(t.replace("{}", supercategory));
            Tensor ids = sd.tokenize(prompts, w -> {});
            Tensor encodings = sd.textEncoder.encode(ids, sd.clipSkip());
            Tensor iSuper = Scope.keep(meanAtToken(encodings, ids, supercategoryId).detach().clone());
            iStar = Scope.keep(iSuper.clone());
            for (Attention a : layers) {
                if (settings.method() == Method.KV_FINETUNE) {
                    tuned.add(Scope.keep(a.originalKey().weight().detach().clone().set_requires_grad(true)));
                    tuned.add(Scope.keep(a.originalValue().weight().detach().clone().set_requires_grad(true)));
                }
                keyTargets.add(settings.method() == Method.TRAINED_KEYS
                        ? GatedRankOneProjection.trainableValueTarget(a.originalKey(), iSuper)
                        : GatedRankOneProjection.lockedKeyTarget(a.originalKey(), iSuper));
                valueTargets.add(GatedRankOneProjection.trainableValueTarget(a.originalValue(), iSuper));
            }
        }
    }

    /** Mean over the batch of each prompt's encoding at its {@code token} position. */
    private static Tensor meanAtToken(Tensor encodings, Tensor ids, long token) {
        Tensor at = ids.eq(new Scalar(token)).to(encodings.scalar_type()).unsqueeze(-1);
        return Ops.div(encodings.mul(at).sum(new long[] {0, 1}, false, new org.bytedeco.pytorch.ScalarTypeOptional()),
                Math.max(1.0, Ops.item(at.sum())));
    }

    private void install() {
        gate = ConceptGate.single(cInv, new Concept(iStar, settings.trainBeta(), settings.trainTau()));
        if (settings.method() == Method.UNGATED_ROME) gate.setGating(ConceptGate.Gating.LINEAR_ROME);
        for (int l = 0; l < layers.size(); l++) {
            Attention a = layers.get(l);
            if (settings.method() == Method.KV_FINETUNE) {
                a.setKey(new FineTunedProjection(a.originalKey(), tuned.get(2 * l)));
                a.setValue(new FineTunedProjection(a.originalValue(), tuned.get(2 * l + 1)));
                continue;
            }
            if (!settings.method().editsProjections()) continue;
            a.setKey(new GatedRankOneProjection(a.originalKey(), gate, GatedRankOneProjection.Role.KEY, List.of(keyTargets.get(l))));
            a.setValue(new GatedRankOneProjection(a.originalValue(), gate, GatedRankOneProjection.Role.VALUE, List.of(valueTargets.get(l))));
        }
    }

    private void uninstall() {
        for (Attention a : layers) {
            a.setKey(null);
            a.setValue(null);
        }
    }

    /** Encodings of prompts with the word's embedding replaced by v* (autograd reaches v*). */
    private Tensor encode(List<String> prompts, Consumer<String> warnings) {
        Tensor ids = sd.tokenize(tokenizer, prompts, warnings);
        Tensor safe = AppliedConcepts.replaceIds(ids, placeholderId, supercategoryId);
        Tensor embeds = ClipTextModel.replaceToken(sd.textEncoder.tokenEmbeddings(safe), ids, placeholderId, embedding);
        return sd.textEncoder.encodeEmbeddings(embeds, sd.clipSkip());
    }

    /** Mean loss over fixed batches, without learning anything (i* and the parameters stay as they are). */
    private double probe(List<Tensor> latents, List<Tensor> masks) {
        double sum = 0;
        try (NoGradGuard ng = new NoGradGuard()) {
            for (int i = 0; i < PROBE_BATCHES; i++) sum += batchLoss(new SplittableRandom(-1 - i), latents, masks, false);
        }
        return sum / PROBE_BATCHES;
    }

    private double microStep(SplittableRandom rng, List<Tensor> latents, List<Tensor> masks) {
        return batchLoss(rng, latents, masks, true);
    }

    private double batchLoss(SplittableRandom rng, List<Tensor> latents, List<Tensor> masks, boolean learn) {
        try (Scope s = Scope.open()) {
            int b = settings.batchSize();
            List<String> prompts = new ArrayList<>();
            List<Tensor> x0s = new ArrayList<>(), ms = new ArrayList<>();
            long[] timesteps = new long[b];
            for (int i = 0; i < b; i++) {
                prompts.add(templates.get(rng.nextInt(templates.size())).replace("{}", word));
                int v = rng.nextInt(latents.size());
                x0s.add(latents.get(v));
                ms.add(masks.get(v));
                timesteps[i] = rng.nextInt(schedule.trainSteps());
            }
            Tensor ids = sd.tokenize(tokenizer, prompts, w -> {});
            Tensor encodings = encode(prompts, w -> {});
            if (learn) {
                // i* <- 0.99 i* + 0.01 mean_b e[b, pos_b], before the UNet sees this batch
                try (NoGradGuard ng = new NoGradGuard()) {
                    Tensor current = meanAtToken(encodings.detach(), ids, placeholderId);
                    iStar = Scope.replaceKept(iStar, Ops.add(Ops.mul(iStar, settings.iStarDecay()), Ops.mul(current, 1 - settings.iStarDecay())));
                }
                if (settings.method().editsProjections()) gate.setConcept(0, gate.concept(0).withIStar(iStar));
            }
            Tensor x0 = Ops.cat(x0s, 0), mask = Ops.cat(ms, 0);
            Tensor noise = new SeededNoise(rng.nextLong()).randn(Ops.shape(x0)).to(sd.device, sd.dtype);
            Tensor noisy = schedule.addNoise(x0, noise, timesteps);
            Tensor t = Ops.fromFloats(toFloats(timesteps), b).to(sd.device, sd.dtype);
            Tensor prediction = sd.unet.forward(noisy, t, encodings);
            Tensor target = vPrediction ? schedule.velocity(x0, noise, timesteps) : noise;
            Tensor error = Ops.sub(prediction, target);
            Tensor loss = Ops.div(Ops.mean(Ops.mul(Ops.mul(error, error), mask)), Ops.item(mask.mean()));
            double value = Ops.item(loss);
            if (learn) Ops.div(loss, settings.gradientAccumulation()).backward();
            return value;
        }
    }

    private static float[] toFloats(long[] xs) {
        float[] f = new float[xs.length];
        for (int i = 0; i < xs.length; i++) f[i] = xs[i];
        return f;
    }

    private void sample(Path file, int resolution) throws IOException {
        if (settings.method() == Method.UNGATED_ROME || !settings.method().editsProjections()) {
            render(file, resolution);
            return;
        }
        gate.setGate(0.7, 0.15);
        try {
            render(file, resolution);
        } finally {
            gate.setGate(settings.trainBeta(), settings.trainTau());
        }
    }

    private void render(Path file, int resolution) throws IOException {
        PromptEncoder encoder = this::encode;
        TextToImage.Request r = new TextToImage.Request("a photo of a " + word, "", 5.0, 25, "ddim", resolution, resolution);
        Png.write(file, TextToImage.generate(sd, encoder, r, settings.seed(), Progress.NONE).image(), Map.of("parameters", "a photo of a " + word));
    }

    private ConceptFile snapshot() {
        List<Tensor> keys = new ArrayList<>(), values = new ArrayList<>();
        if (settings.method().editsProjections()) {
            for (Tensor k : keyTargets) keys.add(Scope.keep(k.detach().clone()));
            for (Tensor v : valueTargets) values.add(Scope.keep(v.detach().clone()));
        }
        Map<String, String> described = settings.describe();
        return new ConceptFile(word, supercategory, Scope.keep(embedding.detach().clone()), Scope.keep(iStar.detach().clone()),
                keys, values, 0.7, 0.15, sd.unetHash(), sd.textEncoderHash(), described);
    }

    private void saveCheckpoint(Path file, AdamW optimizer, int step) throws IOException {
        Map<String, Tensor> t = new LinkedHashMap<>();
        t.put("embedding", embedding);
        t.put("i_star", iStar);
        for (int l = 0; l < layers.size(); l++) {
            t.put("key." + l, keyTargets.get(l));
            t.put("value." + l, valueTargets.get(l));
        }
        List<Tensor> state = optimizer.state();
        for (int i = 0; i < state.size(); i++) t.put("optimizer." + i, state.get(i));
        Safetensors.write(file, t, Map.of("step", Integer.toString(step), "word", word, "seed", Long.toString(settings.seed())),
                Safetensors.StoredType.F32);
    }

    private int restore(Path file, AdamW optimizer) throws IOException {
        if (!Files.isRegularFile(file)) throw new IOException(file + ": no training checkpoint to resume from");
        Safetensors st = Safetensors.open(file);
        if (!word.equals(st.metadata().get("word"))) throw new IOException(file + ": checkpoint is for '" + st.metadata().get("word") + "', not '" + word + "'");
        try (NoGradGuard ng = new NoGradGuard()) {
            embedding.copy_(st.get("embedding"));
            iStar = Scope.replaceKept(iStar, st.get("i_star"));
            for (int l = 0; l < layers.size(); l++) {
                keyTargets.get(l).copy_(st.get("key." + l));
                valueTargets.get(l).copy_(st.get("value." + l));
            }
        }
        List<Tensor> state = new ArrayList<>();
        for (int i = 0; st.keys().contains("optimizer." + i); i++) state.add(st.get("optimizer." + i));
        int step = Integer.parseInt(st.metadata().get("step"));
        optimizer.restore(state, step);
        return step;
    }

}
