package dev.perfusion.pretrain;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.perfusion.io.ImageGrid;
import dev.perfusion.io.Png;
import dev.perfusion.io.Safetensors;
import dev.perfusion.nn.AdamW;
import dev.perfusion.nn.Module;
import dev.perfusion.nn.Param;
import dev.perfusion.nn.Weights;
import dev.perfusion.pipeline.SeededNoise;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.pipeline.TextToImage;
import dev.perfusion.pretrain.WorldBatches.Batch;
import dev.perfusion.sampling.NoiseSchedule;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.text.ClipTextModel;
import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.unet.UNet2DConditionModel;
import dev.perfusion.util.Progress;
import dev.perfusion.vae.AutoencoderKL;
import dev.perfusion.vae.DiagonalGaussian;
import dev.perfusion.world.WorldTokenizer;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;

/**
 * Trains the bundled base model from scratch on the synthetic world, in three stages: the VAE on pictures (L1
 * reconstruction weighted towards the object, a small KL term); the text encoder and UNet together on the frozen
 * VAE's latents (epsilon loss with min-SNR weighting, 10% empty captions for guidance); and a longer training of
 * the VAE's decoder alone on the frozen encoder's latent means (as SD's fine-tuned decoders), which sharpens the
 * pictures without moving the latent space the UNet learned. The last stage needs only the first, so it may also
 * run beside the second ({@link #runDecoderStage}). AdamW, an
 * EMA of the weights, periodic sample grids, and a checkpoint that a later run resumes from, because two
 * hours of CPU outlive a working session.
 *
 * <p>The work folder holds everything: {@code tokenizer/}, {@code vae/} once stage one is done,
 * {@code checkpoint.safetensors}, {@code losses.csv}, {@code samples/}, and finally {@code model/}, the EMA weights
 * in fp16 as a diffusers folder, with {@code recipe.json}.
 */
public final class Pretrainer {
    /** What a run did: whether the model is finished, the steps reached, the last smoothed loss. */
    public record Result(boolean finished, String stage, int step, double loss, double seconds, Path model) {}

    private static final List<String> SAMPLE_PROMPTS = List.of(
            "a red car on the beach", "a brown teddy in the snow", "a white cat on the grass on the left",
            "a yellow bird at night", "a blue mug in a room on the right", "a green tree in the desert",
            "a black dog in the forest", "a small orange house in the city",
            "a red car next to a green tree on the grass", "a photo of a dog");
    private static final int DATA_SEED_VAE = 1 << 30;
    /** Each continued run draws pictures no run before it did: the n-th continuation starts at n × this. */
    private static final long DATA_SEED_CONTINUED = 1L << 32;
    /** As SD's VAE: just enough KL to keep the latents bounded; more makes the posterior noisy and the decoder blur. */
    private static final double KL_WEIGHT = 1e-6;

    private final BaseModelRecipe recipe;
    private final Path work;
    private final Progress progress;
    private final WorldBatches batches;
    private final LossLog losses;
    private DiffusersExport export;
    private int checkpointEvery = 250;
    private int sampleEvery = 1000;
    private double maxSeconds = Double.POSITIVE_INFINITY;
    private Path continueFrom;
    private int continuation;

    public Pretrainer(BaseModelRecipe recipe, Path work, Progress progress) {
        this.recipe = recipe;
        this.work = work;
        this.progress = progress;
        this.batches = new WorldBatches(recipe);
        this.losses = new LossLog(work.resolve("losses.csv"), work.resolve("loss.png"));
    }

    public Pretrainer schedule(int checkpointEvery, int sampleEvery) {
        this.checkpointEvery = checkpointEvery;
        this.sampleEvery = sampleEvery;
        return this;
    }

    /** Stops (after a checkpoint) once this much wall time has passed, so a run fits the time one has. */
    public Pretrainer timeLimit(double seconds) {
        this.maxSeconds = seconds;
        return this;
    }

    /**
     * Trains the text encoder and UNet further from an exported model's weights instead of from scratch, with its
     * tokenizer and (already fine-tuned) VAE as they are: more steps for a model that has not yet learned enough.
     */
    public Pretrainer continueFrom(Path model) throws IOException {
        for (String part : new String[] {"tokenizer/vocab.json", "vae/config.json", "text_encoder/model.safetensors",
                "unet/diffusion_pytorch_model.safetensors", "recipe.json"}) {
            if (!Files.isRegularFile(model.resolve(part))) throw new IOException(model + ": no " + part + " (not a model exported by pretrain)");
        }
        this.continueFrom = model;
        this.continuation = continuations(model.resolve("recipe.json")) + 1;
        return this;
    }

    /** Runs or resumes both stages and exports the model; returns early at the time limit. */
    public Result run() throws IOException {
        long started = System.nanoTime();
        export = new DiffusersExport(recipe, work, progress, continueFrom, losses, () -> seconds(started));
        Files.createDirectories(work.resolve("samples"));
        if (continueFrom != null) {
            // work folder part -> the exported model's: its VAE already has the fine-tuned decoder, so it stands
            // for the results of both VAE stages, which are then skipped
            Map<String, String> kept = Map.of("tokenizer", "tokenizer", "vae", "vae", "vae-decoder", "vae");
            for (Map.Entry<String, String> part : kept.entrySet()) {
                if (!Files.isDirectory(work.resolve(part.getKey()))) copyTree(continueFrom.resolve(part.getValue()), work.resolve(part.getKey()));
            }
        }
        ClipTokenizer tokenizer = tokenizer();
        try {
            if (!Files.isRegularFile(work.resolve("vae/diffusion_pytorch_model.safetensors"))) {
                Result r = trainVae(started, false);
                if (!r.finished()) return r;
            }
            Result r = Files.isRegularFile(work.resolve("model/unet/diffusion_pytorch_model.safetensors"))
                    ? new Result(true, "diffusion", recipe.diffusionSteps(), Double.NaN, 0, work.resolve("model"))
                    : trainDiffusion(tokenizer, started);
            if (!r.finished()) return r;
            if (!Files.isRegularFile(work.resolve("vae-decoder/diffusion_pytorch_model.safetensors"))) {
                Result d = trainVae(started, true);
                if (!d.finished()) return d;
            }
            export.installDecoder();
            return new Result(true, "decoder", recipe.decoderSteps(), r.loss(), seconds(started), work.resolve("model"));
        } finally {
            batches.close();
        }
    }

    /** Only the decoder stage (once the VAE stage is done), for running beside the diffusion stage. */
    public Result runDecoderStage() throws IOException {
        if (!Files.isRegularFile(work.resolve("vae/diffusion_pytorch_model.safetensors"))) {
            throw new IOException(work + ": the VAE stage is not done yet; the decoder stage trains on its encoder");
        }
        Files.createDirectories(work.resolve("samples"));
        try {
            long started = System.nanoTime();
            export = new DiffusersExport(recipe, work, progress, continueFrom, losses, () -> seconds(started));
            Result r = trainVae(started, true);
            if (r.finished() && Files.isRegularFile(work.resolve("model/unet/diffusion_pytorch_model.safetensors"))) export.installDecoder();
            return r;
        } finally {
            batches.close();
        }
    }

    private ClipTokenizer tokenizer() throws IOException {
        Path dir = work.resolve("tokenizer");
        if (Files.isRegularFile(dir.resolve("vocab.json"))) return ClipTokenizer.load(dir);
        progress.message("learning the world's BPE vocabulary");
        ClipTokenizer t = WorldTokenizer.create(recipe.textMaxLength());
        Files.createDirectories(dir);
        t.save(dir);
        return ClipTokenizer.load(dir);
    }

    // ---------------------------------------------------------------- stage 1: the VAE

    /**
     * The VAE stage, or with {@code decoderOnly} the decoder stage: the first stage's encoder frozen, the decoder
     * trained on its latent means (no sampling noise, no KL) for longer.
     */
    private Result trainVae(long started, boolean decoderOnly) throws IOException {
        String stage = decoderOnly ? "decoder" : "vae";
        int total = decoderOnly ? recipe.decoderSteps() : recipe.vaeSteps();
        AutoencoderKL vae;
        if (decoderOnly) {
            vae = AutoencoderKL.load(work.resolve("vae"), Ops.cpu(), org.bytedeco.pytorch.global.torch.ScalarType.Float);
        } else {
            vae = AutoencoderKL.create(recipe.vaeConfig(1.0));
            Weights.initRandom(vae, recipe.seed());
        }
        Trained trained = new Trained(List.of(vae), recipe.vaeLr() * (decoderOnly ? 0.5 : 1.0), recipe.weightDecay(),
                name -> !decoderOnly || name.startsWith("decoder.") || name.startsWith("post_quant_conv."));
        int step = trained.resume(stage);
        long dataSeed = decoderOnly ? DATA_SEED_VAE + 100_000_000L : DATA_SEED_VAE;
        WorldBatches.Series series = new WorldBatches.Series(dataSeed, recipe.vaeBatch(), false);
        CompletableFuture<Batch> next = batches.load(series, step);
        double smoothed = Double.NaN;
        while (step < total) {
            Batch batch = next.join();
            next = batches.load(series, step + 1);
            double loss;
            try (Scope s = Scope.open()) {
                Tensor x = batch.images(), weight = Ops.add(Ops.mul(batch.masks(), 4.0), 1.0);
                DiagonalGaussian posterior;
                Tensor z, kl = null;
                if (decoderOnly) {
                    try (NoGradGuard ng = new NoGradGuard()) {
                        posterior = vae.encode(x);
                    }
                    z = posterior.mean();
                } else {
                    posterior = vae.encode(x);
                    z = posterior.sample(new SeededNoise(recipe.seed() + step).randn(Ops.shape(posterior.mean())));
                    Tensor m = posterior.mean();
                    kl = Ops.mul(Ops.mean(Ops.sub(Ops.add(Ops.mul(m, m), posterior.variance()), Ops.add(posterior.logvar(), 1.0))), 0.5);
                }
                Tensor reconstruction = vae.decode(z);
                Tensor l1 = Ops.div(Ops.mean(Ops.mul(reconstruction.sub(x).abs(), weight)), Ops.item(weight.mean()));
                Tensor objective = kl == null ? l1 : Ops.add(l1, Ops.mul(kl, KL_WEIGHT));
                loss = Ops.item(l1);
                checkFinite(loss, stage, step);
                objective.backward();
            }
            trained.lrScale(learningRateScale(step, total, 0));
            trained.step(step, total);
            step++;
            smoothed = Double.isNaN(smoothed) ? loss : 0.98 * smoothed + 0.02 * loss;
            losses.append(stage, step, loss, seconds(started));
            progress.update(decoderOnly ? "fine-tuning the VAE decoder" : "pretraining VAE", step, total, String.format(Locale.ROOT, "L1 %.4f", smoothed));
            boolean done = step == total;
            if (step % sampleEvery == 0 || done) vaeSamples(trained.emaModule(0, AutoencoderKL.class), stage, step);
            if (!done && (step % checkpointEvery == 0 || overTime(started))) {
                trained.save(stage, step);
                if (overTime(started)) return new Result(false, stage, step, smoothed, seconds(started), null);
            }
        }
        AutoencoderKL ema = trained.emaModule(0, AutoencoderKL.class);
        double scale = decoderOnly ? vae.config().scalingFactor() : 1.0 / latentStd(ema);
        progress.message(String.format(Locale.ROOT, "%s done; latent scaling factor %.5f", stage, scale));
        DiffusersExport.writeComponent(work.resolve(decoderOnly ? "vae-decoder" : "vae"), recipe.vaeJson(scale), "diffusion_pytorch_model.safetensors", ema, Safetensors.StoredType.F32);
        Files.deleteIfExists(checkpoint(stage));
        return new Result(true, stage, step, smoothed, seconds(started), null);
    }

    /** The standard deviation of the latent means over fresh pictures; its inverse is SD's scaling_factor. */
    private double latentStd(AutoencoderKL vae) {
        try (Scope s = Scope.inference()) {
            Batch b = batches.now(new WorldBatches.Series(DATA_SEED_VAE - 100_000, 64, false), 0);
            return Ops.item(vae.encode(b.images()).mean().std());
        }
    }

    private void vaeSamples(AutoencoderKL vae, String stage, int step) throws IOException {
        try (Scope s = Scope.inference()) {
            Batch b = batches.now(new WorldBatches.Series(DATA_SEED_VAE - 1000, 8, false), 0);
            Tensor r = vae.decode(vae.encode(b.images()).mean());
            List<BufferedImage> originals = Png.toImages(b.images()), decoded = Png.toImages(r);
            BufferedImage grid = ImageGrid.of(List.of(originals, decoded), List.of("picture", "VAE"), List.of(), 128);
            Png.write(work.resolve("samples").resolve(String.format(Locale.ROOT, "%s-%05d.png", stage, step)), grid, Map.of());
        }
    }

    // ---------------------------------------------------------------- stage 2: text encoder and UNet

    private Result trainDiffusion(ClipTokenizer tokenizer, long started) throws IOException {
        AutoencoderKL vae = AutoencoderKL.load(work.resolve("vae"), Ops.cpu(), org.bytedeco.pytorch.global.torch.ScalarType.Float);
        double scale = vae.config().scalingFactor();
        ClipTextModel text = ClipTextModel.create(recipe.textEncoderConfig(tokenizer.vocabSize(), tokenizer.bosId(), tokenizer.eosId(), tokenizer.padId()));
        UNet2DConditionModel unet = UNet2DConditionModel.create(recipe.unetConfig());
        if (continueFrom != null) {
            Weights.load(text, Safetensors.open(continueFrom.resolve("text_encoder/model.safetensors")), "", Ops.cpu(),
                    org.bytedeco.pytorch.global.torch.ScalarType.Float, "text encoder");
            Weights.load(unet, Safetensors.open(continueFrom.resolve("unet/diffusion_pytorch_model.safetensors")), "", Ops.cpu(),
                    org.bytedeco.pytorch.global.torch.ScalarType.Float, "UNet");
        } else {
            Weights.initRandom(text, recipe.seed() + 1);
            Weights.initRandom(unet, recipe.seed() + 2);
        }
        Trained trained = new Trained(List.of(text, unet), recipe.diffusionLr(), recipe.weightDecay());
        int step = trained.resume("diffusion");
        NoiseSchedule schedule = new NoiseSchedule(recipe.schedulerConfig());
        double[] snrWeight = new double[schedule.trainSteps()];
        for (int t = 0; t < snrWeight.length; t++) {
            double a = schedule.alphaCumprod(t), snr = a / (1 - a);
            snrWeight[t] = Math.min(snr, recipe.minSnrGamma()) / snr;
        }
        int total = recipe.diffusionSteps();
        long dataSeed = continuation * DATA_SEED_CONTINUED;
        WorldBatches.Series series = new WorldBatches.Series(dataSeed, recipe.diffusionBatch(), true);
        CompletableFuture<Batch> next = batches.load(series, step);
        double smoothed = Double.NaN;
        while (step < total) {
            Batch batch = next.join();
            next = batches.load(series, step + 1);
            double loss;
            try (Scope s = Scope.open()) {
                SplittableRandom rng = new SplittableRandom(recipe.seed() * 31 + step);
                Tensor x0;
                try (NoGradGuard ng = new NoGradGuard()) {
                    x0 = Ops.mul(vae.encode(batch.images()).mean(), scale);
                }
                int b = batch.captions().size();
                long[] timesteps = new long[b];
                float[] timeFloats = new float[b], weights = new float[b];
                for (int i = 0; i < b; i++) {
                    timesteps[i] = rng.nextInt(schedule.trainSteps());
                    timeFloats[i] = timesteps[i];
                    weights[i] = (float) snrWeight[(int) timesteps[i]];
                }
                Tensor noise = new SeededNoise(rng.nextLong()).randn(Ops.shape(x0));
                Tensor noisy = schedule.addNoise(x0, noise, timesteps);
                Tensor encodings = text.encode(tokenizeAll(tokenizer, batch.captions()));
                Tensor prediction = unet.forward(noisy, Ops.fromFloats(timeFloats, b), encodings);
                Tensor error = Ops.sub(prediction, noise);
                Tensor perSample = Ops.mean(Ops.reshape(Ops.mul(error, error), b, -1), 1, false);
                Tensor weighted = Ops.mean(Ops.mul(perSample, Ops.fromFloats(weights, b)));
                loss = Ops.item(Ops.mean(perSample));
                checkFinite(loss, "diffusion", step);
                weighted.backward();
            }
            trained.lrScale(learningRateScale(step, total, recipe.warmupSteps()));
            trained.step(step, total);
            step++;
            smoothed = Double.isNaN(smoothed) ? loss : 0.98 * smoothed + 0.02 * loss;
            losses.append("diffusion", step, loss, seconds(started));
            progress.update("pretraining text encoder + UNet", step, total, String.format(Locale.ROOT, "loss %.4f", smoothed));
            boolean done = step == total;
            if (step % sampleEvery == 0 || done) {
                losses.plot();
                diffusionSamples(tokenizer, trained.emaModule(0, ClipTextModel.class), trained.emaModule(1, UNet2DConditionModel.class), vae, step);
            }
            if (!done && (step % checkpointEvery == 0 || overTime(started))) {
                trained.save("diffusion", step);
                if (overTime(started)) return new Result(false, "diffusion", step, smoothed, seconds(started), null);
            }
        }
        Path model = export.export(tokenizer, trained.emaModule(0, ClipTextModel.class), trained.emaModule(1, UNet2DConditionModel.class), smoothed);
        Files.deleteIfExists(checkpoint("diffusion"));
        return new Result(true, "diffusion", step, smoothed, seconds(started), model);
    }

    /** Linear warm-up, then a cosine decay to a tenth of the rate at the last step. */
    static double learningRateScale(int step, int total, int warmup) {
        double warm = warmup > 0 ? Math.min(1.0, (step + 1.0) / warmup) : 1.0;
        return warm * (0.1 + 0.45 * (1 + Math.cos(Math.PI * step / Math.max(1, total))));
    }

    private static Tensor tokenizeAll(ClipTokenizer tokenizer, List<String> captions) {
        int max = tokenizer.maxLength();
        long[] ids = new long[captions.size() * max];
        for (int i = 0; i < captions.size(); i++) System.arraycopy(tokenizer.encodeForModel(captions.get(i)).ids(), 0, ids, i * max, max);
        return Ops.fromLongs(ids, captions.size(), max);
    }

    private void diffusionSamples(ClipTokenizer tokenizer, ClipTextModel text, UNet2DConditionModel unet, AutoencoderKL vae, int step) throws IOException {
        StableDiffusion sd = StableDiffusion.of(tokenizer, text, unet, vae, recipe.schedulerConfig(), "pretraining");
        List<BufferedImage> row = new ArrayList<>();
        for (int i = 0; i < SAMPLE_PROMPTS.size(); i++) {
            TextToImage.Request r = new TextToImage.Request(SAMPLE_PROMPTS.get(i), "", 4.0, 25, "ddim", recipe.imageSize(), recipe.imageSize());
            row.add(TextToImage.generate(sd, r, 1000 + i, Progress.NONE).image());
        }
        List<List<BufferedImage>> rows = List.of(row.subList(0, 5), row.subList(5, row.size()));
        BufferedImage grid = ImageGrid.of(rows, List.of("", ""), List.of(), 128);
        Png.write(work.resolve("samples").resolve(String.format(Locale.ROOT, "step-%05d.png", step)), grid,
                Map.of("prompts", String.join(" | ", SAMPLE_PROMPTS)));
    }

    /** The loss curves of every stage, in training order (means over 50 steps; the last run's values where a run was resumed). */
    public static void plotLosses(Path csv, Path png) throws IOException {
        new LossLog(csv, png).plot();
    }

    /** How many continued runs lie behind an exported model: the depth of its recipe's {@code continued_from} chain. */
    static int continuations(Path recipeJson) throws IOException {
        int n = 0;
        for (JsonNode r = new ObjectMapper().readTree(recipeJson.toFile()).get("continued_from"); r != null; r = r.get("continued_from")) n++;
        return n;
    }

    // ---------------------------------------------------------------- bookkeeping

    /** One checkpoint per stage, so that the decoder stage can run beside the diffusion stage. */
    private Path checkpoint(String stage) {
        return work.resolve("checkpoint-" + stage + ".safetensors");
    }

    private boolean overTime(long started) {
        return seconds(started) > maxSeconds;
    }

    private static double seconds(long started) {
        return (System.nanoTime() - started) / 1e9;
    }

    private static void checkFinite(double loss, String stage, int step) {
        if (!Double.isFinite(loss)) throw new IllegalStateException(stage + " loss became " + loss + " at step " + (step + 1) + "; lower the learning rate and resume from the last checkpoint");
    }

    private static void copyTree(Path from, Path to) throws IOException {
        Files.createDirectories(to);
        try (var files = Files.list(from)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                if (Files.isRegularFile(f)) Files.copy(f, to.resolve(f.getFileName().toString()));
            }
        }
    }

    /**
     * The modules being trained, their AdamW state and an EMA copy of each; saved to and restored from one
     * checkpoint file whose metadata says the stage and the step.
     */
    private final class Trained {
        private final List<Module> modules;
        private final List<Module> emaModules = new ArrayList<>();
        private final List<Tensor> params = new ArrayList<>(), ema = new ArrayList<>();
        private final List<String> names = new ArrayList<>();
        private final AdamW optimizer;

        Trained(List<Module> modules, double lr, double weightDecay) {
            this(modules, lr, weightDecay, name -> true);
        }

        /** Only parameters whose name passes {@code trainable} learn; the EMA twin copies the rest as they are. */
        Trained(List<Module> modules, double lr, double weightDecay, java.util.function.Predicate<String> trainable) {
            this.modules = modules;
            List<AdamW.Group> groups = new ArrayList<>();
            for (int m = 0; m < modules.size(); m++) {
                Module copy = emptyTwin(modules.get(m));
                emaModules.add(copy);
                Map<String, Param> twin = copy.namedParameters();
                for (Map.Entry<String, Param> e : modules.get(m).namedParameters().entrySet()) {
                    Tensor p = e.getValue().t();
                    if (!trainable.test(e.getKey())) {
                        try (Scope s = Scope.inference()) {
                            twin.get(e.getKey()).set(p.detach().clone());
                        }
                        continue;
                    }
                    p.set_requires_grad(true);
                    params.add(p);
                    names.add(m + "." + e.getKey());
                    groups.add(new AdamW.Group(m + "." + e.getKey(), p, lr));
                    try (Scope s = Scope.inference()) {
                        twin.get(e.getKey()).set(p.detach().clone());
                    }
                    ema.add(twin.get(e.getKey()).t());
                }
            }
            this.optimizer = new AdamW(groups, weightDecay);
        }

        void lrScale(double scale) {
            optimizer.setLrScale(scale);
        }

        /** Clips the global gradient norm to 1, steps AdamW, updates the EMA (with the usual warm-up of its decay). */
        void step(int step, int total) {
            try (Scope s = Scope.inference()) {
                List<Tensor> norms = new ArrayList<>();
                for (Tensor p : params) if (p.grad().defined()) norms.add(p.grad().norm().reshape(1));
                double norm = Ops.item(Ops.cat(norms, 0).norm());
                if (norm > 1.0) for (Tensor p : params) if (p.grad().defined()) p.grad().mul_(new org.bytedeco.pytorch.Scalar(1.0 / norm));
            }
            optimizer.step();
            optimizer.zeroGrad();
            double decay = Math.min(recipe.emaDecay(), (1.0 + step) / (10.0 + step));
            try (Scope s = Scope.inference()) {
                for (int i = 0; i < params.size(); i++) {
                    ema.get(i).mul_(new org.bytedeco.pytorch.Scalar(decay)).add_(params.get(i).detach(), new org.bytedeco.pytorch.Scalar(1 - decay));
                }
            }
        }

        <M extends Module> M emaModule(int index, Class<M> type) {
            return type.cast(emaModules.get(index));
        }

        void save(String stage, int step) throws IOException {
            Map<String, Tensor> t = new LinkedHashMap<>();
            for (int i = 0; i < params.size(); i++) {
                t.put("param." + names.get(i), params.get(i).detach());
                t.put("ema." + names.get(i), ema.get(i));
            }
            List<Tensor> state = optimizer.state();
            for (int i = 0; i < state.size(); i++) t.put("adam." + i, state.get(i));
            Safetensors.write(checkpoint(stage), t, Map.of("stage", stage, "step", Integer.toString(step),
                    "seed", Long.toString(recipe.seed())), Safetensors.StoredType.F32);
            progress.message("checkpoint at " + stage + " step " + step);
        }

        /** The step to continue from: 0 without a checkpoint of this stage. */
        int resume(String stage) throws IOException {
            Path file = checkpoint(stage);
            if (!Files.isRegularFile(file)) return 0;
            Safetensors st = Safetensors.open(file);
            if (!stage.equals(st.metadata().get("stage"))) return 0;
            if (!Long.toString(recipe.seed()).equals(st.metadata().get("seed"))) {
                throw new IOException(file + ": checkpoint of a run with seed " + st.metadata().get("seed") + ", this recipe's seed is " + recipe.seed());
            }
            try (NoGradGuard ng = new NoGradGuard()) {
                for (int i = 0; i < params.size(); i++) {
                    params.get(i).copy_(st.get("param." + names.get(i)));
                    ema.get(i).copy_(st.get("ema." + names.get(i)));
                }
            }
            List<Tensor> state = new ArrayList<>();
            for (int i = 0; st.keys().contains("adam." + i); i++) state.add(st.get("adam." + i));
            int step = Integer.parseInt(st.metadata().get("step"));
            optimizer.restore(state, step);
            progress.message("resumed " + stage + " at step " + step + " from " + file);
            return step;
        }
    }

    /** A second instance of the same architecture (for the EMA weights). */
    private Module emptyTwin(Module m) {
        if (m instanceof AutoencoderKL a) return AutoencoderKL.create(a.config());
        if (m instanceof ClipTextModel t) return ClipTextModel.create(t.config());
        if (m instanceof UNet2DConditionModel u) return UNet2DConditionModel.create(u.config());
        throw new IllegalArgumentException("no twin for " + m.getClass());
    }
}
