package dev.perfusion.pretrain;

import dev.perfusion.io.ImageGrid;
import dev.perfusion.io.Png;
import dev.perfusion.io.Safetensors;
import dev.perfusion.io.StateDict;
import dev.perfusion.nn.Module;
import dev.perfusion.nn.Param;
import dev.perfusion.nn.Weights;
import dev.perfusion.pipeline.SeededNoise;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.pipeline.TextToImage;
import dev.perfusion.pretrain.WorldBatches.Batch;
import dev.perfusion.sampling.NoiseSchedule;
import dev.perfusion.tensor.Autocast;
import dev.perfusion.tensor.CpuFeatures;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.text.ClipTextModel;
import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.unet.UNet2DConditionModel;
import dev.perfusion.util.Progress;
import dev.perfusion.vae.AutoencoderKL;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Supplier;

/**
 * Stage two: the text encoder and the UNet together (or, in the frozen-text recipe, the UNet alone on the contrastive
 * stage's frozen text encoder, as SD's UNet learned on a frozen CLIP), on the VAE stage's frozen latents of captioned world pictures:
 * the epsilon loss with min-SNR weighting, and some empty captions so that the model also learns the unconditional
 * prediction that guidance needs. Ends in the exported model. A continued run starts from an exported model's text
 * encoder and UNet instead of from random weights.
 */
final class DiffusionStage implements Stage {
    private static final List<String> SAMPLE_PROMPTS = List.of(
            "a red car on the beach", "a brown teddy in the snow", "a white cat on the grass on the left",
            "a yellow bird at night", "a blue mug in a room on the right", "a green tree in the desert",
            "a black dog in the forest", "a small orange house in the city",
            "a red car next to a green tree on the grass", "a photo of a dog");
    /** The loss log's name for the attention localization regulariser. */
    static final String LOCALIZATION = "localization";
    /** Each continued run draws pictures no run before it did: the n-th continuation starts at n × this. */
    private static final long DATA_SEED_CONTINUED = 1L << 32;

    private final PretrainingRun run;
    private final BaseModelRecipe recipe;
    private final ClipTokenizer tokenizer;
    private final int continuation;
    private final DiffusersExport export;
    private final AutoencoderKL vae;
    /**
     * The frozen VAE that encodes the batches: {@link #vae} in bf16 where the CPU computes bf16 natively (16 pictures
     * 73 ms instead of 120 on one Zen 4 core, beside a part's forward and backward); its latents differ from fp32's by bf16's
     * rounding, far less than the noise of the least noisy timestep the UNet learns at (README, Benchmarks).
     */
    private final AutoencoderKL batchEncoder;
    private final ScalarType batchEncoding = CpuFeatures.nativeBf16() ? ScalarType.BFloat16 : ScalarType.Float;
    private final double latentScale;
    private final ClipTextModel text;
    /** Whether the text encoder is the contrastive stage's, frozen: then only the UNet learns. */
    private final boolean frozenText;
    private final UNet2DConditionModel unet;
    private final NoiseSchedule schedule;
    /** Min-SNR-γ: each timestep's loss weight, min(SNR, γ) / SNR, so that the easy low-noise steps do not dominate. */
    private final double[] snrWeight;
    /** Whether the recipe localizes the words' attention (its weight above 0). */
    private final boolean localizesAttention;

    /**
     * {@code continueFrom}: the exported model to start from, the {@code continuation}-th run that continues
     * training, and its recipe {@code trained}, whose UNet grows where the recipe's has more layers per level,
     * channels or levels; null, 0 and null for a model from scratch. {@code newLatents}: the work folder's VAE is another than
     * the continued model's, so the UNet's layers that read and write latents start afresh. {@code newUnet}: the UNet
     * starts from scratch whatever the continued model's.
     */
    DiffusionStage(PretrainingRun run, ClipTokenizer tokenizer, Path continueFrom, int continuation, BaseModelRecipe trained, boolean newLatents,
                   boolean newUnet, DiffusersExport export) throws IOException {
        this.run = run;
        this.recipe = run.recipe();
        this.tokenizer = tokenizer;
        this.continuation = continuation;
        this.export = export;
        // stored NCHW, not channels-last: they encode beside the batch parts, where convolutions compute in NCHW (Ops.nchw)
        this.vae = AutoencoderKL.load(run.work().resolve("vae"), Ops.cpu(), ScalarType.Float);
        this.batchEncoder = batchEncoding == ScalarType.Float ? vae : AutoencoderKL.load(run.work().resolve("vae"), Ops.cpu(), batchEncoding);
        this.latentScale = vae.config().scalingFactor();
        this.frozenText = recipe.frozenTextEncoder();
        this.text = frozenText ? ClipTextModel.load(run.work().resolve(ContrastiveStage.TEXT_FOLDER), Ops.cpu(), ScalarType.Float)
                : ClipTextModel.create(recipe.textEncoderConfig(tokenizer.vocabSize(), tokenizer.bosId(), tokenizer.eosId(), tokenizer.padId()));
        this.unet = UNet2DConditionModel.create(recipe.unetConfig());
        if (continueFrom != null && !frozenText) {
            Weights.load(text, Safetensors.open(continueFrom.resolve("text_encoder/model.safetensors")), "", Ops.cpu(), ScalarType.Float, "text encoder");
        } else if (continueFrom == null && !frozenText) {
            Weights.initRandom(text, recipe.seed() + 1);
        }
        if (continueFrom == null || newUnet) {
            Weights.initRandom(unet, recipe.seed() + 2);
        } else {
            Safetensors weights = Safetensors.open(continueFrom.resolve("unet").resolve(DiffusersExport.WEIGHTS));
            int trainedLayers = trained.unetLayersPerBlock(), widening = Pretrainer.widening(trained.unetChannels(), recipe.unetChannels());
            if (newLatents && trainedLayers < recipe.unetLayersPerBlock()) {
                throw new IllegalArgumentException("a new VAE and a deeper UNet in one run: deepen the UNet first, then train the new VAE under it");
            }
            String what = "UNet of " + continueFrom;
            if (newLatents) loadWithFreshLatentLayers(unet, weights, recipe.seed() + 2);
            else if (Pretrainer.levelAdded(trained.unetChannels(), recipe.unetChannels())) UNetLevelAdded.load(unet, weights, trained.unetChannels().size(), what, recipe.seed() + 2);
            else if (trainedLayers < recipe.unetLayersPerBlock()) UNetGrowth.load(unet, weights, trainedLayers, what, recipe.seed() + 2);
            else if (widening > 1) UNetWidening.load(unet, weights, widening, what, recipe.seed() + 2);
            else Weights.load(unet, weights, "", Ops.cpu(), ScalarType.Float, "UNet");
        }
        this.localizesAttention = recipe.attentionLocalization() > 0;
        this.schedule = new NoiseSchedule(recipe.schedulerConfig());
        this.snrWeight = new double[schedule.trainSteps()];
        for (int t = 0; t < snrWeight.length; t++) {
            double a = schedule.alphaCumprod(t), snr = a / (1 - a);
            snrWeight[t] = Math.min(snr, recipe.minSnrGamma()) / snr;
        }
    }

    /**
     * A trained UNet under a new VAE: every weight from {@code trained} but those of the layers that read and write
     * latents, whose channels mean something else now; conv_in starts random, conv_out at zero (the first predictions
     * are 0, so the trained layers between them are not shaken by a random output).
     */
    static void loadWithFreshLatentLayers(UNet2DConditionModel unet, StateDict trained, long seed) {
        Weights.initRandom(unet, seed);
        for (Map.Entry<String, Param> e : unet.namedParameters().entrySet()) {
            String name = e.getKey();
            Param p = e.getValue();
            try (Scope s = Scope.inference()) {
                if (name.startsWith("conv_out.")) p.set(Ops.zerosLike(p.t()));
                else if (!name.startsWith("conv_in.")) {
                    if (!trained.has(name) || !java.util.Arrays.equals(trained.shape(name), p.shape())) {
                        throw new IllegalArgumentException("the continued UNet's " + name + (trained.has(name) ? " has shape "
                                + java.util.Arrays.toString(trained.shape(name)) + ", expected " + java.util.Arrays.toString(p.shape()) : " is missing"));
                    }
                    p.set(trained.get(name).to(p.t().device(), p.t().scalar_type()));
                }
            }
        }
    }

    @Override
    public Plan plan() {
        return new Plan("diffusion", frozenText ? "pretraining UNet (frozen text encoder)" : "pretraining text encoder + UNet", "loss", recipe.diffusionSteps(), recipe.warmupSteps(),
                recipe.diffusionLr(), new WorldBatches.Series(continuation * DATA_SEED_CONTINUED, recipe.diffusionBatch(), true));
    }

    @Override
    public List<Module> modules() {
        return frozenText ? List.of(unet) : List.of(text, unet);
    }

    @Override
    public String regulariser() {
        return localizesAttention ? LOCALIZATION : null;
    }

    /** The frozen VAE's latents of the pictures and, in the frozen-text recipe, the frozen text encoder's encodings. */
    @Override
    public Batch prepare(Batch batch) {
        try (NoGradGuard ng = new NoGradGuard()) {
            Tensor latents = Ops.mul(encodedMean(batchEncoder, batchEncoding, batch.images()), latentScale);
            return batch.withFrozenEncodings(latents, frozenText ? text.encode(tokenizer.idsForModel(batch.captions())) : null);
        }
    }

    /** The encoder's posterior means of the pictures, in fp32 whatever the encoder computes in. */
    static Tensor encodedMean(AutoencoderKL encoder, ScalarType type, Tensor images) {
        return encoder.encode(images.to(type)).mean().to(ScalarType.Float);
    }

    @Override
    public boolean preparesBatches() {
        return true;
    }

    @Override
    public Loss loss(Batch batch, int step) {
        return loss(batch, step, 0, 1);
    }

    @Override
    public boolean splitsBatches() {
        return true;
    }

    /**
     * The min-SNR-weighted epsilon loss of the part's pictures, over the whole batch's size. Every part draws the
     * step's timesteps and noise for the whole batch and takes its own rows, so the parts add up to the unsplit step.
     */
    @Override
    public Loss loss(Batch batch, int step, int part, int parts) {
        boolean whole = parts == 1; // the phases are timed only when the step runs on this one thread
        SplittableRandom rng = new SplittableRandom(recipe.seed() * 31 + step);
        int b = batch.captions().size(), from = part * b / parts, to = (part + 1) * b / parts, rows = to - from;
        long[] timesteps = new long[rows];
        float[] timeFloats = new float[rows], weights = new float[rows];
        for (int i = 0; i < b; i++) {
            int t = rng.nextInt(schedule.trainSteps());
            if (i < from || i >= to) continue;
            timesteps[i - from] = t;
            timeFloats[i - from] = t;
            weights[i - from] = (float) snrWeight[t];
        }
        Tensor noise = new SeededNoise(rng.nextLong()).randn(Ops.shape(batch.latents())).narrow(0, from, rows);
        Tensor noisy = schedule.addNoise(batch.latents().narrow(0, from, rows), noise, timesteps);
        if (whole) run.phases().lap("noise");
        Tensor encodings = frozenText ? batch.encodings().narrow(0, from, rows) : text.encode(tokenizer.idsForModel(batch.captions().subList(from, to)));
        if (!frozenText && whole) run.phases().lap("text encoder");
        Tensor times = Ops.fromFloats(timeFloats, rows);
        List<Tensor> probabilities = new ArrayList<>();
        Supplier<Tensor> forward = () -> localizesAttention ? AttentionLocalization.observing(probabilities, () -> unet.forward(noisy, times, encodings))
                : unet.forward(noisy, times, encodings);
        Tensor prediction = recipe.bf16() ? Ops.toFloat32(Autocast.bf16(forward)) : forward.get();
        if (whole) run.phases().lap("UNet forward");
        Tensor error = Ops.sub(prediction, noise), squared = Ops.mul(error, error);
        Tensor perSample = Ops.mean(Ops.reshape(squared, rows, -1), 1, false);
        Tensor weighted = recipe.accessoryLossWeight() > 0
                ? Ops.mean(Ops.reshape(Ops.mul(squared, accessoryWeights(batch.accessories().narrow(0, from, rows), Ops.shape(squared)[2], recipe.accessoryLossWeight())), rows, -1), 1, false)
                : perSample;
        Tensor objective = Ops.div(Ops.mul(weighted, Ops.fromFloats(weights, rows)).sum(), b);
        Loss loss = new Loss(objective, Ops.item(perSample.sum()) / b);
        if (localizesAttention) {
            // the whole batch's named tokens, so that the parts' losses add up to the unsplit step's
            Tensor naming = AttentionLocalization.namingTokens(tokenizer, batch.captions(), batch.labels(), recipe.localizedDetails());
            Tensor localized = AttentionLocalization.loss(recipe.localization(), probabilities, batch.masks().narrow(0, from, rows), naming.narrow(0, from, rows), Ops.item(naming.sum()));
            loss = new Loss(Ops.addScaled(objective, localized, recipe.attentionLocalization()), loss.logged(), Ops.item(localized));
        }
        if (whole) run.phases().lap("loss");
        return loss;
    }

    /**
     * Each latent pixel's weight in the loss [rows, 1, h, h]: 1, and 1 + {@code weight} where an accessory covers any of
     * its pixels ({@code accessories} [rows, 1, n, n], soft masks, taken at their largest over each latent pixel).
     */
    static Tensor accessoryWeights(Tensor accessories, long latentSize, double weight) {
        return Ops.add(Ops.mul(Ops.maxPool2d(accessories, Ops.shape(accessories)[2] / latentSize), weight), 1.0);
    }

    /** The loss curves so far, and the sample prompts drawn by the EMA weights: {@code samples/step-<step>.png}. */
    @Override
    public void samples(TrainedWeights weights, int step) throws IOException {
        run.losses().plot();
        StableDiffusion sd = StableDiffusion.of(tokenizer, emaText(weights), emaUnet(weights),
                vae, recipe.schedulerConfig(), "pretraining");
        List<BufferedImage> row = new ArrayList<>();
        for (int i = 0; i < SAMPLE_PROMPTS.size(); i++) {
            TextToImage.Request r = new TextToImage.Request(SAMPLE_PROMPTS.get(i), "", 4.0, 25, "ddim", recipe.imageSize(), recipe.imageSize());
            row.add(TextToImage.generate(sd, r, 1000 + i, Progress.NONE).image());
        }
        List<List<BufferedImage>> rows = List.of(row.subList(0, 5), row.subList(5, row.size()));
        BufferedImage grid = ImageGrid.of(rows, List.of("", ""), List.of(), 128);
        Png.write(run.work().resolve("samples").resolve(String.format(Locale.ROOT, "step-%05d.png", step)), grid,
                Map.of("prompts", String.join(" | ", SAMPLE_PROMPTS)));
    }

    @Override
    public Path finish(TrainedWeights weights, double loss) throws IOException {
        return export.export(tokenizer, emaText(weights), emaUnet(weights), loss);
    }

    /** The text encoder the UNet learns on (the frozen one in the frozen-text recipe). */
    ClipTextModel textEncoder() {
        return text;
    }

    UNet2DConditionModel unet() {
        return unet;
    }

    /** The text encoder to sample and export: the EMA copy, or the frozen encoder itself. */
    private ClipTextModel emaText(TrainedWeights weights) {
        return frozenText ? text : weights.ema(0, ClipTextModel.class);
    }

    private UNet2DConditionModel emaUnet(TrainedWeights weights) {
        return weights.ema(frozenText ? 0 : 1, UNet2DConditionModel.class);
    }
}
