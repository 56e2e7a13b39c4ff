package dev.perfusion.training;

import dev.perfusion.io.Png;
import dev.perfusion.io.Safetensors;
import dev.perfusion.nn.AdamW;
import dev.perfusion.nn.PartGradients;
import dev.perfusion.perfusion.AppliedConcepts;
import dev.perfusion.perfusion.AttentionMask;
import dev.perfusion.perfusion.Concept;
import dev.perfusion.perfusion.ConceptFile;
import dev.perfusion.perfusion.ConceptGate;
import dev.perfusion.perfusion.ProjectionEdit;
import dev.perfusion.pipeline.SeededNoise;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.pipeline.TextToImage;
import dev.perfusion.sampling.NoiseSchedule;
import dev.perfusion.tensor.NonFiniteException;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.tensor.Threads;
import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.util.Phases;
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

/**
 * Trains one concept with one {@link ConceptMethod} (method notes §4.1): the word embedding v* and the method's
 * edit of the cross-attention projections, through the frozen text encoder and UNet, with i* tracked as the 0.99
 * moving average of the word's encoding. The concept being trained is installed the way a finished one is
 * ({@link AppliedConcepts}), its tensors the optimizer's leaves. This class is the loop: data, loss, optimizer,
 * i*, checkpoints, samples and progress.
 */
public final class ConceptTrainer {
    /**
     * What a training run produced; {@code probeBefore}/{@code probeAfter} are the loss on the same fixed batches
     * (images, timesteps, noise) with the initial and the trained concept, a noise-free measure of progress.
     */
    public record Result(ConceptFile concept, List<Double> losses, double probeBefore, double probeAfter, double seconds) {}

    private static final int PROBE_BATCHES = 4;

    /** Prompt templates for the concept word ([C]'s nine). */
    public static final List<String> TEMPLATES = List.of("a photo of a {}", "a good photo of a {}", "the photo of a {}",
            "a good photo of the {}", "image of a {}", "image of the {}", "a photograph of {}", "a {} shown in a photo",
            "a photo of {}");

    /**
     * Prompts that name another object before the concept word, for i* ({@link TrainingSettings#iStarAfterObjects}):
     * "{}" is the concept's word, "%s" another object's.
     */
    public static final List<String> AFTER_OBJECT_TEMPLATES = List.of("a %s on the left and a {} on the right",
            "a %s on the right and a {} on the left", "a %s next to a {}", "a %s and a {}");
    /** The other objects, those of them the vocabulary holds whole (the world model knows its eight categories). */
    private static final List<String> OTHER_OBJECTS = List.of("dog", "cat", "teddy", "car", "house", "tree", "mug", "bird",
            "horse", "chair", "lamp", "ball", "book", "flower", "boat", "bicycle");

    private final StableDiffusion sd;
    private final String word;
    private final String supercategory;
    private final TrainingSettings settings;
    private final Tensor cInv;
    private final String cInvProvenance;
    private final long supercategoryId;
    private final NoiseSchedule schedule;
    private final boolean vPrediction;
    private final List<String> templates;
    /** Prompts naming another object before the word, for i*; empty unless {@link TrainingSettings#iStarAfterObjects}. */
    private final List<String> afterObjectTemplates;

    /** The concept as it is now: its tensors are the optimizer's leaves (i* is tracked apart, in {@link #iStar}). */
    private ConceptFile concept;
    private Tensor iStar;
    /** The concept installed in the model while training. */
    private AppliedConcepts applied;
    private long placeholderId;
    /** Where the training steps' time goes, for the training benchmark. */
    private Phases phases = new Phases();
    /** The tensors that learn (v* and the method's), in the optimizer's order. */
    private List<Tensor> leaves;
    /** Where a small model's micro-batches run side by side; null for a large model (one at a time, every thread on each operation). */
    private Threads.SideBySide sideBySide;
    /** Whether a small model's micro-batches are fused into one UNet pass per worker ({@link #fusedRanges}). */
    private boolean fuseMicroBatches = true;

    public ConceptTrainer(StableDiffusion sd, Tensor cInv, String word, String supercategory, TrainingSettings settings) {
        this(sd, cInv, null, word, supercategory, settings);
    }

    /** {@code cInvProvenance}: where C^-1 came from, recorded in the concept file's settings as {@code covariance}. */
    public ConceptTrainer(StableDiffusion sd, Tensor cInv, String cInvProvenance, String word, String supercategory,
                          TrainingSettings settings) {
        this.cInvProvenance = cInvProvenance;
        this.sd = sd;
        this.cInv = cInv;
        this.word = word;
        this.supercategory = supercategory;
        this.settings = settings;
        this.supercategoryId = AppliedConcepts.singleToken(sd.tokenizer, supercategory);
        sd.tokenizer.withAddedTokens(List.of(word)); // refuses a word the vocabulary already has, before any work
        this.schedule = new NoiseSchedule(sd.schedulerConfig);
        this.vPrediction = sd.schedulerConfig.predictionType().equals("v_prediction");
        this.templates = templatesFor(sd.tokenizer);
        this.afterObjectTemplates = settings.iStarAfterObjects() ? afterObjectTemplatesFor(sd.tokenizer, supercategory) : List.of();
    }

    /**
     * The templates whose words the vocabulary holds whole (all of them for CLIP; the world model knows "a photo of
     * a" but not "a good photo of"): words a model never learned would only blur the concept's encodings.
     */
    public static List<String> templatesFor(ClipTokenizer tokenizer) {
        List<String> known = TEMPLATES.stream().filter(t -> wordsHeldWhole(tokenizer, t)).toList();
        return known.isEmpty() ? TEMPLATES : known;
    }

    /** Whether every word of {@code template} (but its "{}") is one token of the vocabulary. */
    private static boolean wordsHeldWhole(ClipTokenizer tokenizer, String template) {
        return java.util.Arrays.stream(template.replace("{}", "").trim().split(" +")).allMatch(w -> tokenizer.tokensOf(w).size() == 1);
    }

    /**
     * {@link #AFTER_OBJECT_TEMPLATES} with each of the other objects (not the supercategory) whose words, like the
     * templates', the vocabulary holds whole; refuses a vocabulary that holds none of them.
     */
    public static List<String> afterObjectTemplatesFor(ClipTokenizer tokenizer, String supercategory) {
        List<String> out = new ArrayList<>();
        for (String template : AFTER_OBJECT_TEMPLATES) {
            for (String object : OTHER_OBJECTS) {
                String t = String.format(java.util.Locale.ROOT, template, object);
                if (!object.equals(supercategory) && wordsHeldWhole(tokenizer, t)) out.add(t);
            }
        }
        if (out.isEmpty()) {
            throw new IllegalArgumentException("the vocabulary holds none of the prompts that name another object before the word ("
                    + AFTER_OBJECT_TEMPLATES.get(0) + ", ...), so i* cannot be tracked after other objects");
        }
        return out;
    }

    /**
     * Trains and writes the concept file atomically to {@code out}; a checkpoint beside it ({@code out}.ckpt) allows
     * {@code resume}, and sample images go to {@code samplesDir} when set.
     */
    public Result train(Path images, Path masks, Path out, boolean resume, Path samplesDir, Progress progress)
            throws IOException {
        long started = System.nanoTime();
        int resolution = settings.resolution() > 0 ? settings.resolution() : sd.pictureSize();
        List<TrainingImages.View> views = TrainingImages.views(images, masks, resolution, settings.fit(), settings.viewsPerImage(), settings.seed());
        progress.message("encoding " + views.size() + " augmented views of the training images at " + resolution + "x" + resolution);
        List<Tensor> latents = new ArrayList<>(), latentMasks = new ArrayList<>();
        for (TrainingImages.View v : views) {
            try (Scope s = Scope.inference()) {
                Tensor x0 = sd.vae.latentsFromImage(Png.toTensor(v.image()).to(sd.device, sd.dtype));
                latents.add(Scope.keep(Ops.toFloat32(x0)));
                long[] ls = Ops.shape(x0);
                Tensor m = settings.attentionMasks() ? AttentionMask.of(sd, x0, supercategory, settings.seed())
                        : Ops.avgPool2d(Ops.fromFloats(v.mask(), 1, 1, resolution, resolution), resolution / ls[2]);
                m = Ops.div(m, Math.max(1e-6, Ops.item(m.max())));
                latentMasks.add(Scope.keep(Ops.add(Ops.mul(m, 1 - settings.maskFloor()), settings.maskFloor()).to(sd.device, torch.ScalarType.Float)));
            }
        }
        concept = initialConcept();
        iStar = Scope.keep(concept.iStar().clone()); // replaced (and released) at every step
        List<AdamW.Group> groups = new ArrayList<>();
        if (settings.embeddingLr() > 0) groups.add(new AdamW.Group("embedding", concept.embedding(), settings.embeddingLr()));
        groups.addAll(settings.method().trainedTensors(concept.edit(), settings));
        AdamW optimizer = new AdamW(groups, settings.weightDecay());
        Path checkpoint = out.resolveSibling(out.getFileName() + ".ckpt");
        Map<String, String> resumeKey = resumeKey(images, masks);
        int startStep = 0;
        if (resume) startStep = restore(checkpoint, optimizer, resumeKey);
        leaves = optimizer.groups().stream().map(AdamW.Group::tensor).toList();
        PartGradients.define(leaves);
        List<Double> losses = new ArrayList<>();
        double probeBefore, probeAfter;
        // a small UNet's micro-batches run side by side, one per thread (no more than a step has); a large one's
        // operations use every thread themselves
        try (Threads.SideBySide side = sd.smallUNet() ? Threads.sideBySide(sd.sideBySideWorkers(settings.gradientAccumulation()), "concept-training") : null;
             AppliedConcepts installed = AppliedConcepts.apply(sd, cInv,
                List.of(new AppliedConcepts.Use(concept.withIStar(iStar), settings.trainBeta(), settings.trainTau())),
                ConceptGate.Orthogonalization.APPROXIMATE, false)) {
            applied = installed;
            sideBySide = side;
            // every micro-batch of a step is bound to its i* before the first UNet pass: keep them all
            if (installed.gate() != null) installed.gate().holdGraphs(settings.gradientAccumulation());
            placeholderId = installed.tokenizer().tokenId(word).orElseThrow();
            probeBefore = probe(latents, latentMasks);
            phases.restart();
            for (int step = startStep; step < settings.steps(); step++) {
                double loss = 0;
                int accumulation = settings.gradientAccumulation();
                List<SplittableRandom> rngs = new ArrayList<>();
                for (int micro = 0; micro < accumulation; micro++) {
                    rngs.add(new SplittableRandom(settings.seed() * 1_000_003L + step * 131L + micro));
                }
                for (double microLoss : batchLosses(rngs, latents, latentMasks, true)) {
                    if (!Double.isFinite(microLoss)) throw stopped(step + 1, new NonFiniteException("the loss is " + microLoss));
                    loss += microLoss / accumulation;
                }
                ConceptGate gate = applied.gate();
                if (gate != null) gate.trackIStar(0, iStar); // the i* the last micro-batch saw, for samples and the file
                requireFiniteTraining(step + 1, optimizer, true);
                phases.lap("finite checks");
                optimizer.step();
                optimizer.zeroGrad();
                phases.lap("optimizer");
                requireFiniteTraining(step + 1, optimizer, false);
                phases.lap("finite checks");
                losses.add(loss);
                progress.metric("loss", step + 1, loss);
                progress.update("training " + word, step + 1, settings.steps(), String.format(java.util.Locale.ROOT, "loss %.4f", loss));
                boolean last = step + 1 == settings.steps();
                if (settings.checkpointEvery() > 0 && (step + 1) % settings.checkpointEvery() == 0 && !last) {
                    saveCheckpoint(checkpoint, optimizer, step + 1, resumeKey);
                }
                if (samplesDir != null && settings.sampleEvery() > 0 && ((step + 1) % settings.sampleEvery() == 0 || last)) {
                    Path sample = samplesDir.resolve(String.format(java.util.Locale.ROOT, "step-%05d.png", step + 1));
                    sample(sample, resolution);
                    progress.wrote(sample);
                }
                phases.lap("progress, checkpoints, samples");
            }
            probeAfter = probe(latents, latentMasks);
            if (!Double.isFinite(probeAfter)) {
                throw stopped(settings.steps(), new NonFiniteException("the loss of the trained concept on the fixed batches is " + probeAfter));
            }
        } finally {
            applied = null;
            sideBySide = null;
        }
        ConceptFile trained = snapshot();
        trained.save(out);
        Files.deleteIfExists(checkpoint);
        return new Result(trained, losses, probeBefore, probeAfter, (System.nanoTime() - started) / 1e9);
    }

    /**
     * Stops training when a gradient ({@code gradients}) or, after the optimizer's step, a trained tensor or i*
     * holds a NaN or an infinity: continuing would only write a concept that draws black pictures.
     */
    private void requireFiniteTraining(int step, AdamW optimizer, boolean gradients) {
        try {
            for (AdamW.Group g : optimizer.groups()) {
                Tensor t = gradients ? g.grad() : g.tensor();
                if (t.defined()) Ops.requireFinite(t, (gradients ? "the gradient of " : "") + ProjectionEdit.meaning(g.name()));
            }
            if (!gradients) Ops.requireFinite(iStar, ProjectionEdit.meaning("i_star"));
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

    /**
     * v* from the supercategory's embedding; i* = i_super, its mean encoding over the templates (and, half and half,
     * over the prompts naming another object first where i* is tracked there too); the method's edit.
     */
    private ConceptFile initialConcept() {
        try (Scope s = Scope.inference()) {
            Tensor table = sd.textEncoder.tokenEmbedding().weight.t();
            Tensor embedding = Scope.keep(Ops.trainableCopy(table.select(0, supercategoryId)));
            Tensor iSuper = meanEncoding(templates, supercategory, supercategoryId);
            if (!afterObjectTemplates.isEmpty()) {
                iSuper = Ops.div(Ops.add(iSuper, meanEncoding(afterObjectTemplates, supercategory, supercategoryId)), 2);
            }
            iSuper = Scope.keep(iSuper.detach().clone());
            ProjectionEdit edit = settings.method().initialEdit(sd.unet.crossAttentionLayers(), iSuper);
            return new ConceptFile(word, supercategory, embedding, Scope.keep(iSuper.clone()), edit, Concept.GENERATION_BETA,
                    Concept.GENERATION_TAU, sd.unetHash(), sd.textEncoderHash(), recorded());
        }
    }

    /** What the concept file records of how it was made: the settings, and where C^-1 came from when known. */
    private Map<String, String> recorded() {
        Map<String, String> m = new LinkedHashMap<>(settings.describe());
        if (cInvProvenance != null) m.put(ConceptFile.COVARIANCE_SETTING, cInvProvenance);
        m.put(ConceptFile.CLIP_SKIP_SETTING, Integer.toString(sd.clipSkip()));
        return m;
    }

    /** The base model's mean encoding of {@code word} (token {@code token}) over {@code templates}. */
    private Tensor meanEncoding(List<String> templates, String word, long token) {
        List<String> prompts = templates.stream().map(t -> t.replace("{}", word)).toList();
        Tensor ids = sd.tokenize(prompts, w -> {});
        return meanAtToken(sd.textEncoder.encode(ids, sd.clipSkip()), ids, token);
    }

    /** Mean over the batch of each prompt's encoding at its {@code token} position. */
    private static Tensor meanAtToken(Tensor encodings, Tensor ids, long token) {
        Tensor at = ids.eq(new Scalar(token)).to(encodings.scalar_type()).unsqueeze(-1);
        return Ops.div(encodings.mul(at).sum(new long[] {0, 1}, false, new org.bytedeco.pytorch.ScalarTypeOptional()),
                Math.max(1.0, Ops.item(at.sum())));
    }

    /** Mean loss over fixed batches, without learning anything (i* and the parameters stay as they are). */
    private double probe(List<Tensor> latents, List<Tensor> masks) {
        double sum = 0;
        Phases training = phases;
        phases = new Phases(); // a probe is not a training step
        try (NoGradGuard ng = new NoGradGuard()) {
            List<SplittableRandom> rngs = new ArrayList<>();
            for (int i = 0; i < PROBE_BATCHES; i++) rngs.add(new SplittableRandom(-1 - i));
            for (double loss : batchLosses(rngs, latents, masks, false)) sum += loss;
        } finally {
            phases = training;
            phases.skip();
        }
        return sum / PROBE_BATCHES;
    }

    /** A micro-batch drawn: its prompts, and its noisy latents and targets. */
    private record MicroBatch(List<String> prompts, Tensor noisy, Tensor t, Tensor target, Tensor mask, double lossScale) {}

    /**
     * Micro-batches fused into one batch for one text encoder and UNet pass, each micro-batch a block of its rows:
     * with the i* each saw bound to its block, the pass computes what the micro-batches would one at a time, in
     * fewer, larger operations (a small model's step is mostly per-operation cost). {@code encodings} carry a graph
     * of their own, which the pass's backward frees.
     */
    private record FusedBatch(List<MicroBatch> parts, Tensor ids, Tensor encodings, Tensor noisy, Tensor t, Tensor target, Tensor mask) {
        /** Micro-batch m's rows of a tensor of this batch. */
        Tensor rowsOf(Tensor x, int m) {
            long rows = Ops.shape(x)[0] / parts.size();
            return x.narrow(0, m * rows, rows);
        }
    }

    private FusedBatch fuse(List<MicroBatch> parts) {
        List<String> prompts = new ArrayList<>();
        List<Tensor> noisy = new ArrayList<>(), t = new ArrayList<>(), target = new ArrayList<>(), mask = new ArrayList<>();
        for (MicroBatch m : parts) {
            prompts.addAll(m.prompts());
            noisy.add(m.noisy());
            t.add(m.t());
            target.add(m.target());
            mask.add(m.mask());
        }
        Tensor ids = sd.tokenize(applied.tokenizer(), prompts, w -> {});
        Tensor encodings = applied.encode(prompts, w -> {});
        return new FusedBatch(parts, ids, encodings, Ops.cat(noisy, 0), Ops.cat(t, 0), Ops.cat(target, 0), Ops.cat(mask, 0));
    }

    /**
     * The micro-batches drawn by {@code rngs}, as they would run one after another: each one's draws and text
     * encodings, then i*'s update from its encodings (v* does not change within a step, so their encodings do not
     * depend on the order), then the UNet's forward and backward. On a small model the micro-batches are fused into
     * one batch per side-by-side worker, each block reading the i* its micro-batch saw ({@link ConceptGate#trackIStarFor});
     * each fused batch returns its gradients, added into the leaves in order, so the result does not depend on which
     * one finishes first. Returns each micro-batch's loss.
     */
    private List<Double> batchLosses(List<SplittableRandom> rngs, List<Tensor> latents, List<Tensor> masks, boolean learn) {
        List<Double> losses = new ArrayList<>();
        try (Scope s = Scope.open()) {
            List<MicroBatch> batches = new ArrayList<>();
            for (SplittableRandom rng : rngs) batches.add(draw(rng, latents, masks));
            List<FusedBatch> fused = new ArrayList<>();
            for (int[] range : fusedRanges(batches)) fused.add(fuse(batches.subList(range[0], range[1])));
            phases.lap("text encoder");
            if (learn) {
                ConceptGate gate = applied.gate();
                int m = 0;
                for (FusedBatch f : fused) {
                    List<Tensor> seen = new ArrayList<>();  // the i* each of its micro-batches saw
                    for (int part = 0; part < f.parts().size(); part++, m++) {
                        // i* <- 0.99 i* + 0.01 mean_b e[b, pos_b], before the UNet sees this micro-batch
                        try (NoGradGuard ng = new NoGradGuard()) {
                            Tensor current = meanAtToken(f.rowsOf(f.encodings(), part).detach(), f.rowsOf(f.ids(), part), placeholderId);
                            if (!afterObjectTemplates.isEmpty()) current = Ops.div(Ops.add(current, afterObjectEncoding(rngs.get(m))), 2);
                            iStar = Scope.replaceKept(iStar, Ops.add(Ops.mul(iStar, settings.iStarDecay()), Ops.mul(current, 1 - settings.iStarDecay())));
                            seen.add(iStar.clone());
                        }
                    }
                    if (gate != null) gate.trackIStarFor(f.encodings(), 0, seen);
                }
                phases.lap("i*");
            }
            double gradientScale = learn ? 1.0 / settings.gradientAccumulation() : 0;
            List<double[]> lossSums = PartGradients.run(sideBySide, fused.size(), p -> forwardAndBackward(fused.get(p), gradientScale), leaves);
            phases.lap(sideBySide != null ? "UNet forward and backward (micro-batches fused, side by side)" : "UNet forward and backward");
            for (int p = 0; p < fused.size(); p++) {
                for (int m = 0; m < fused.get(p).parts().size(); m++) losses.add(lossSums.get(p)[m] * fused.get(p).parts().get(m).lossScale());
            }
        }
        phases.lap("freeing tensors");
        return losses;
    }

    /**
     * Which micro-batches each UNet pass fuses, as [first, end) ranges in order: on a small model one run of
     * neighbours per side-by-side worker, no larger than {@link #FUSED_PASS_POSITIONS}; on a large one each alone (its
     * activations would not fit several times).
     */
    private List<int[]> fusedRanges(List<MicroBatch> batches) {
        int count = batches.size();
        long[] noisy = Ops.shape(batches.get(0).noisy());
        int passes = sideBySide == null || !fuseMicroBatches ? count
                : fusedPasses(count, sideBySide.workers(), noisy[0] * noisy[2] * noisy[3]);
        List<int[]> ranges = new ArrayList<>();
        for (int p = 0, first = 0; p < passes; p++) {
            int end = first + (count - first) / (passes - p);
            ranges.add(new int[] {first, end});
            first = end;
        }
        return ranges;
    }

    /**
     * Latent positions (pictures x height x width) up to which fusing a small model's micro-batches into one pass
     * pays. Measured on the bundled UNet's shapes (one thread, forward and backward): at 16x16 latents a pass of 8
     * pictures takes 0.014 s per picture, one of 4 0.017 s; at 32x32 both take 0.10 s per picture, and a fused pass
     * only holds twice the activations (20 training steps at 128 peaked at 1.02 GiB with them fused, 0.77 without).
     */
    static final long FUSED_PASS_POSITIONS = 4096;

    /** How many UNet passes {@code count} micro-batches of {@code positions} latent positions each take on {@code workers} side by side. */
    static int fusedPasses(int count, int workers, long positions) {
        long perPass = Math.max(1, FUSED_PASS_POSITIONS / positions);
        return (int) Math.min(count, Math.max(workers, (count + perPass - 1) / perPass));
    }

    /**
     * The word's mean encoding, as the concept is now, in a batch of prompts that name another object first, drawn
     * from {@code rng} after the micro-batch's own draws (so the training draws are those of a run without them).
     */
    private Tensor afterObjectEncoding(SplittableRandom rng) {
        List<String> prompts = new ArrayList<>();
        for (int i = 0; i < settings.batchSize(); i++) {
            prompts.add(afterObjectTemplates.get(rng.nextInt(afterObjectTemplates.size())).replace("{}", word));
        }
        Tensor ids = sd.tokenize(applied.tokenizer(), prompts, w -> {});
        return meanAtToken(applied.encode(prompts, w -> {}), ids, placeholderId);
    }

    /** One micro-batch's draws from {@code rng}, in the order training has always drawn them. */
    private MicroBatch draw(SplittableRandom rng, List<Tensor> latents, List<Tensor> masks) {
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
        phases.lap("batch");
        Tensor x0 = Ops.cat(x0s, 0), mask = Ops.cat(ms, 0);
        Tensor noise = new SeededNoise(rng.nextLong()).randn(Ops.shape(x0)).to(sd.device, torch.ScalarType.Float);
        Tensor noisy = schedule.addNoise(x0, noise, timesteps);
        Tensor t = Ops.fromFloats(toFloats(timesteps), b).to(sd.device, torch.ScalarType.Float);
        Tensor target = vPrediction ? schedule.velocity(x0, noise, timesteps) : noise;
        phases.lap("noise");
        // loss = mean(error² · mask) / mean(mask): the sum of error² · mask times this
        return new MicroBatch(prompts, noisy, t, target, mask, 1.0 / (x0.numel() * Ops.item(mask.mean())));
    }

    /**
     * The UNet's forward pass on fused micro-batches and, with {@code gradientScale} above 0, the gradients of their
     * losses (each micro-batch's weighted as it would be alone) times {@code gradientScale} (the caller adds them into
     * the leaves): on the thread it runs on. Returns each micro-batch's sum of masked squared errors.
     */
    private PartGradients.Part<double[]> forwardAndBackward(FusedBatch batch, double gradientScale) {
        boolean learn = gradientScale > 0;
        try (Scope s = learn ? Scope.open() : Scope.inference()) {
            // the UNet computes in the model's precision; the loss, its gradient and the trained tensors are fp32
            Tensor prediction = Ops.toFloat32(sd.unet.forward(batch.noisy().to(sd.dtype), batch.t(), batch.encodings().to(sd.dtype)));
            Tensor error = Ops.sub(prediction, batch.target());
            Tensor perPicture = Ops.sum(Ops.mul(Ops.mul(error, error), batch.mask()).flatten(1, -1), 1, false);
            int parts = batch.parts().size();
            Tensor perPart = Ops.sum(perPicture.view(parts, -1), 1, false);
            double[] sums = Ops.toDoubles(perPart);
            if (!learn) return PartGradients.Part.withoutGradients(sums);
            double[] weights = new double[parts];
            for (int m = 0; m < parts; m++) weights[m] = batch.parts().get(m).lossScale() * gradientScale;
            Tensor objective = Ops.sum(perPart.mul(Ops.fromDoubles(weights, parts).to(perPart)), 0, false);
            return new PartGradients.Part<>(sums, PartGradients.of(objective, leaves));
        }
    }

    /** Runs each micro-batch through the UNet alone, as a large model does (to check that fusing them changes nothing). */
    ConceptTrainer withMicroBatchesOneAtATime() {
        fuseMicroBatches = false;
        return this;
    }

    /** Where the training steps' time went so far (the probes before and after are not counted). */
    public Phases phases() {
        return phases;
    }

    private static float[] toFloats(long[] xs) {
        float[] f = new float[xs.length];
        for (int i = 0; i < xs.length; i++) f[i] = xs[i];
        return f;
    }

    /** A sample picture as the concept will be generated: with the generation gate, not the training one. */
    private void sample(Path file, int resolution) throws IOException {
        ConceptGate gate = applied.gate();
        if (gate != null) gate.setGate(Concept.GENERATION_BETA, Concept.GENERATION_TAU);
        try {
            TextToImage.Request r = new TextToImage.Request("a photo of a " + word, "", 5.0, 25, "ddim", resolution, resolution);
            Png.write(file, TextToImage.generate(sd, applied.startingAt(Concept.GENERATION_CONCEPT_START), r, settings.seed(), Progress.NONE).image(),
                    Map.of("parameters", "a photo of a " + word));
        } finally {
            if (gate != null) gate.setGate(settings.trainBeta(), settings.trainTau());
        }
    }

    /** The trained concept, detached from the optimizer. */
    private ConceptFile snapshot() {
        List<Tensor> keys = new ArrayList<>(), values = new ArrayList<>();
        ProjectionEdit edit = concept.edit();
        for (int l = 0; l < edit.layerCount(); l++) {
            keys.add(Scope.keep(edit.keys().get(l).detach().clone()));
            values.add(Scope.keep(edit.values().get(l).detach().clone()));
        }
        return new ConceptFile(word, supercategory, Scope.keep(concept.embedding().detach().clone()), Scope.keep(iStar.detach().clone()),
                new ProjectionEdit(edit.kind(), keys, values), concept.beta(), concept.tau(), concept.baseModelHash(),
                concept.textEncoderHash(), concept.settings());
    }

    /**
     * What a resumed run must share with the run that wrote the checkpoint, else it would go on learning another
     * concept from the first one's tensors: the photos and masks (their bytes), the supercategory, the model, C^-1 and
     * every setting but how many steps it trains and how often it checkpoints and samples.
     */
    private Map<String, String> resumeKey(Path images, Path masks) throws IOException {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("run.photos", filesDigest(TrainingImages.list(images)));
        m.put("run.masks", masks == null ? "none" : filesDigest(TrainingImages.list(masks)));
        m.put("run.supercategory", supercategory);
        m.put("run.base model", sd.unetHash());
        m.put("run.text encoder", sd.textEncoderHash());
        m.put("run.clip skip", Integer.toString(sd.clipSkip()));
        if (cInvProvenance != null) m.put("run.C^-1", cInvProvenance);
        for (java.lang.reflect.RecordComponent c : TrainingSettings.class.getRecordComponents()) {
            if (List.of("steps", "checkpointEvery", "sampleEvery").contains(c.getName())) continue;
            try {
                Object v = c.getAccessor().invoke(settings);
                m.put("run." + c.getName(), v instanceof ConceptMethod method ? method.id() : String.valueOf(v));
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(e);
            }
        }
        return m;
    }

    /** SHA-256 of the files' names and bytes, in order. */
    private static String filesDigest(List<Path> files) throws IOException {
        try {
            java.security.MessageDigest sha = java.security.MessageDigest.getInstance("SHA-256");
            for (Path f : files) {
                sha.update(f.getFileName().toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
                sha.update((byte) 0);
                sha.update(Files.readAllBytes(f));
            }
            return files.size() + " files, sha256 " + java.util.HexFormat.of().formatHex(sha.digest(), 0, 8);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The concept's tensors under their file names, i* as it is now, the optimizer's state, and what the run was. */
    private void saveCheckpoint(Path file, AdamW optimizer, int step, Map<String, String> resumeKey) throws IOException {
        Map<String, Tensor> t = new LinkedHashMap<>(concept.withIStar(iStar).tensors());
        List<Tensor> state = optimizer.state();
        for (int i = 0; i < state.size(); i++) t.put("optimizer." + i, state.get(i));
        Map<String, String> metadata = new LinkedHashMap<>(resumeKey);
        metadata.putAll(Map.of("step", Integer.toString(step), "word", word, "method", settings.method().id(), "seed", Long.toString(settings.seed())));
        Safetensors.write(file, t, metadata, Safetensors.StoredType.F32);
    }

    private int restore(Path file, AdamW optimizer, Map<String, String> resumeKey) throws IOException {
        if (!Files.isRegularFile(file)) throw new IOException(file + ": no training checkpoint to resume from");
        Safetensors st = Safetensors.open(file);
        if (!word.equals(st.metadata().get("word"))) throw new IOException(file + ": checkpoint is for '" + st.metadata().get("word") + "', not '" + word + "'");
        String method = st.metadata().getOrDefault("method", "");
        if (!method.equals(settings.method().id())) {
            throw new IOException(file + ": checkpoint was made by the method '" + method + "', not '" + settings.method().id() + "'");
        }
        for (Map.Entry<String, String> e : resumeKey.entrySet()) {
            String then = st.metadata().get(e.getKey());
            if (then != null && !then.equals(e.getValue())) { // a checkpoint written before these were recorded resumes as it did
                throw new IOException(file + ": the checkpoint's run had another " + e.getKey().substring("run.".length()) + " (" + then
                        + ", now " + e.getValue() + "): resume with the photos and settings it was trained with, or train afresh without --resume");
            }
        }
        int step = Integer.parseInt(st.metadata().get("step"));
        if (step >= settings.steps()) {
            throw new IOException(file + ": the checkpoint is at step " + step + ", and this run trains " + settings.steps()
                    + " steps: give more steps to go on from it");
        }
        try (NoGradGuard ng = new NoGradGuard()) {
            for (Map.Entry<String, Tensor> e : concept.tensors().entrySet()) {
                if (!st.keys().contains(e.getKey())) throw new IOException(file + ": checkpoint lacks tensor '" + e.getKey() + "'");
                if (e.getKey().equals("i_star")) iStar = Scope.replaceKept(iStar, st.get("i_star"));
                else e.getValue().copy_(st.get(e.getKey()));
            }
        }
        List<Tensor> state = new ArrayList<>();
        for (int i = 0; st.keys().contains("optimizer." + i); i++) state.add(st.get("optimizer." + i));
        optimizer.restore(state, step);
        return step;
    }
}
