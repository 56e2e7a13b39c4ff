package dev.perfusion.pretrain;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.perfusion.io.AtomicFiles;
import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.util.Phases;
import dev.perfusion.util.Progress;
import dev.perfusion.vae.VaeConfig;
import dev.perfusion.world.WorldTokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Trains the bundled base model from scratch on the synthetic world, in three stages: the VAE on pictures
 * ({@link VaeStage}); the text encoder and UNet together on the frozen VAE's latents ({@link DiffusionStage}); and a
 * longer training of the VAE's decoder alone ({@link DecoderStage}), which sharpens the pictures without moving the
 * latent space the UNet learned. The last stage needs only the first, so it may also run beside the second
 * ({@link #runDecoderStage}). Each stage runs in the same loop ({@link StageLoop}): AdamW, an EMA of the weights,
 * periodic sample grids, and a checkpoint that a later run resumes from, because two hours of CPU outlive a working
 * session. The frozen-text recipe ({@link BaseModelRecipe#frozenText()}) puts a first stage before them, a CLIP for the
 * world ({@link ContrastiveStage}), whose text encoder then stays frozen while the UNet learns, as in SD.
 *
 * <p>The work folder holds everything: {@code tokenizer/}, {@code vae/} once stage one is done,
 * {@code checkpoint-<stage>.safetensors}, {@code losses.csv}, {@code samples/}, and finally {@code model/}, the EMA
 * weights in fp16 as a diffusers folder, with {@code recipe.json} ({@link DiffusersExport}). One process at a time
 * trains the stages up to the UNet in a work folder, and one its decoder ({@link WorkFolderLock}).
 */
public final class Pretrainer {
    /** What a run did: whether the model is finished, the steps reached, the last smoothed loss. */
    public record Result(boolean finished, String stage, int step, double loss, double seconds, Path model) {}

    private final BaseModelRecipe recipe;
    private final Path work;
    private final Progress progress;
    private int checkpointEvery = 250;
    private int sampleEvery = 1000;
    private double maxSeconds = Double.POSITIVE_INFINITY;
    private Path continueFrom;
    private int continuation;
    /** The continued model's recipe: its UNet's layers per level and channels, which the recipe's may grow from. */
    private BaseModelRecipe continued;
    /** With {@link #continueFrom}: what becomes of the continued model's VAE. */
    private DiffusersExport.VaeOrigin vaeOrigin = DiffusersExport.VaeOrigin.KEPT;
    /** With {@link #continueFrom}: the captions name other words than the continued model's, so its tokenizer and text encoder are not kept. */
    private boolean newTextEncoder;
    /** With {@link #continueFrom}: the UNet starts from scratch, not from the continued model's. */
    private boolean newUnet;
    private final Phases phases = new Phases();

    public Pretrainer(BaseModelRecipe recipe, Path work, Progress progress) {
        this.recipe = recipe;
        this.work = work;
        this.progress = progress;
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
     * tokenizer and (already fine-tuned) VAE as they are: more steps for a model that has not yet learned enough. With
     * the frozen-text recipe from a model whose text encoder learned with its UNet, only the UNet is the start (a warm
     * start: it can already draw the world) and the UNet learns to read a new, contrastively trained, frozen encoder;
     * so too where the recipe's captions name other words than the model's ({@link BaseModelRecipe#captionDetails}).
     */
    public Pretrainer continueFrom(Path model) throws IOException {
        return continueFrom(model, false);
    }

    /**
     * As {@link #continueFrom(Path)}; with {@code newUnet}, only the model's tokenizer, text encoder and VAE are kept
     * and the UNet is a new one of the recipe's shape, trained from scratch: for a UNet whose levels do not fit the
     * latents' size (one trained on 16x16 latents, continued on 32x32 ones, still draws objects twice).
     */
    public Pretrainer continueFrom(Path model, boolean newUnet) throws IOException {
        for (String part : new String[] {"tokenizer/vocab.json", "vae/config.json", "text_encoder/model.safetensors",
                "unet/" + DiffusersExport.WEIGHTS, "recipe.json"}) {
            if (!Files.isRegularFile(model.resolve(part))) throw new IOException(model + ": no " + part + " (not a model exported by pretrain)");
        }
        BaseModelRecipe recorded = BaseModelRecipe.recordedIn(model);
        // a deeper or wider UNet, or one with a level more, grows from the model's (UNetGrowth, UNetWidening, UNetLevelAdded),
        // another VAE is new; every other shape must be the model's
        boolean deepened = !newUnet && recipe.unetLayersPerBlock() > recorded.unetLayersPerBlock();
        boolean levelAdded = !newUnet && levelAdded(recorded.unetChannels(), recipe.unetChannels());
        boolean widened = !newUnet && !levelAdded && !recipe.unetChannels().equals(recorded.unetChannels());
        boolean newVae = !recipe.vaeChannels().equals(recorded.vaeChannels()) || recipe.latentChannels() != recorded.latentChannels();
        BaseModelRecipe fitting = deepened || newUnet ? recorded.withUnetLayersPerBlock(recipe.unetLayersPerBlock()) : recorded;
        if (newUnet || levelAdded) fitting = fitting.withUnetChannels(recipe.unetChannels());
        if (widened && recipe.unetChannels().size() == recorded.unetChannels().size()) fitting = fitting.withUnetChannels(recipe.unetChannels());
        if (newVae) fitting = fitting.withVae(recipe.vaeChannels(), recipe.latentChannels());
        // another picture size: the model's VAE and UNet, both convolutional, at that size (its latents grow with it),
        // or a new VAE whose levels keep the model's latents
        boolean resized = recipe.imageSize() != recorded.imageSize();
        if (resized) fitting = fitting.withImageSize(recipe.imageSize());
        if (!fitting.architecture().equals(recipe.architecture())) {
            throw new IllegalArgumentException(model + " was trained as " + recorded.architecture() + "; this recipe builds " + recipe.architecture()
                    + ", which its weights do not fit (leave --recipe out to continue with the model's own; of the shapes, only the UNet's layers per level "
                    + "and channels may grow or it may gain a level (its deepest repeated), the pictures may have another size, and the VAE may be another, trained anew)");
        }
        if (widened) {
            int factor = widening(recorded.unetChannels(), recipe.unetChannels());
            if (factor < 2) {
                throw new IllegalArgumentException("a wider UNet than " + model + "'s " + recorded.unetChannels() + " has the same whole multiple of "
                        + "its channels at every level, e.g. " + recorded.unetChannels().stream().map(c -> 2 * c).toList() + ", and one with a level more "
                        + "has its channels with the deepest repeated, " + withDeepestRepeated(recorded.unetChannels()) + " (or --new-unet); got " + recipe.unetChannels());
            }
            if (deepened || newVae || resized) {
                throw new IllegalArgumentException("a wider UNet, and a deeper UNet, a new VAE or another picture size, in one run: widen the UNet in a run of its own");
            }
        }
        if (levelAdded && (deepened || newVae)) {
            throw new IllegalArgumentException("a UNet with a level more, and a deeper UNet or a new VAE, in one run: add the level in a run of its own");
        }
        if (newVae && recipe.latentSize() != recorded.latentSize()) {
            throw new IllegalArgumentException("a new VAE under " + model + "'s UNet must keep its " + recorded.latentSize() + "x" + recorded.latentSize()
                    + " latents; " + recipe.vaeChannels() + " gives " + recipe.latentSize() + "x" + recipe.latentSize());
        }
        boolean otherCaptions = recipe.captionDetails() != recorded.captionDetails();
        if (otherCaptions && !recipe.frozenTextEncoder()) {
            throw new IllegalArgumentException(model + "'s captions named " + recorded.captionDetails() + " of the details, this recipe's " + recipe.captionDetails()
                    + ": a continued text encoder that learns with its UNet cannot read new words (continue with the frozen-text recipe, whose encoder is trained anew)");
        }
        this.newTextEncoder = otherCaptions;
        this.newUnet = newUnet;
        this.continueFrom = model;
        this.continuation = continuations(model.resolve("recipe.json")) + 1;
        this.continued = recorded;
        this.vaeOrigin = newVae ? DiffusersExport.VaeOrigin.NEW : DiffusersExport.VaeOrigin.KEPT;
        return this;
    }

    /**
     * With {@link #continueFrom}: the continued model's VAE trains further too, before the UNet: the VAE stage
     * starts from its weights (recipe's VAE steps, on pictures it has not seen), the decoder stage follows, and the
     * UNet learns the moved latent space from its warm start. For a VAE that has not yet learned to draw the
     * objects' parts (its reconstructions are the ceiling of every picture the model draws).
     */
    public Pretrainer trainVaeFurther() {
        if (continueFrom == null) throw new IllegalStateException("training the VAE further needs a model to continue from");
        if (vaeOrigin == DiffusersExport.VaeOrigin.NEW) throw new IllegalArgumentException("the recipe's VAE is another than " + continueFrom + "'s: it is trained anew, not further");
        this.vaeOrigin = DiffusersExport.VaeOrigin.TRAINED_FURTHER;
        return this;
    }

    /** Runs or resumes the stages that are not done yet and exports the model; returns early at the time limit. */
    public Result run() throws IOException {
        try (WorkFolderLock stages = WorkFolderLock.take(work, WorkFolderLock.Part.STAGES);
             PretrainingRun run = PretrainingRun.start(recipe, work, progress, phases)) {
            StageLoop loop = new StageLoop(run, checkpointEvery, sampleEvery, maxSeconds);
            DiffusersExport export = new DiffusersExport(run, continueFrom, vaeOrigin);
            checkOrigin();
            boolean exportedBefore = export.exported();
            checkFinishedParts(export, exportedBefore);
            recordOrigin(); // only once the folder's finished parts agree with this run, and before any part is copied in
            if (trainsItsDecoder()) DecoderClaim.record(work, recipe, DecoderClaim.Kind.MAIN);
            if (continueFrom != null) keepExportedParts();
            ClipTokenizer tokenizer = tokenizer();
            Files.createDirectories(work.resolve("samples"));
            if (recipe.frozenTextEncoder() && !ContrastiveStage.done(work)) {
                Result c = loop.train(new ContrastiveStage(run, tokenizer));
                if (!c.finished()) return c;
            }
            if (!done("vae")) {
                Result r = loop.train(vaeOrigin == DiffusersExport.VaeOrigin.TRAINED_FURTHER ? new VaeStage(run, continueFrom.resolve("vae"), continuation) : new VaeStage(run));
                if (!r.finished()) return r;
            }
            Result r = exportedBefore
                    ? new Result(true, "diffusion", recipe.diffusionSteps(), Double.NaN, 0, export.model())
                    : loop.train(new DiffusionStage(run, tokenizer, continueFrom, continuation, continued, vaeOrigin == DiffusersExport.VaeOrigin.NEW, newUnet, export));
            if (!r.finished()) return r;
            double loss = r.loss(); // NaN: the diffusion stage finished in an earlier run
            try (WorkFolderLock decoder = WorkFolderLock.await(work, WorkFolderLock.Part.DECODER, progress)) {
                if (done("vae-decoder")) StageRecord.DECODER.checkDoneAs(work, recipe);
                else {
                    Result d = loop.train(new DecoderStage(run, decoderContinuation()));
                    if (!d.finished()) return d;
                    DecoderClaim.clear(work);
                    if (Double.isNaN(loss)) loss = d.loss();
                }
                export.installDecoder();
            }
            return new Result(true, "decoder", recipe.decoderSteps(), loss, run.seconds(), export.model());
        }
    }

    /**
     * Only the contrastive stage of the frozen-text recipe (its text and image towers in the work folder): the text
     * encoder's s profile is measured on it before hours go into the UNet.
     */
    public Result runContrastiveStage() throws IOException {
        if (!recipe.frozenTextEncoder()) throw new IllegalArgumentException("the recipe has no contrastive stage (the frozen-text recipe has)");
        Files.createDirectories(work.resolve("samples"));
        try (WorkFolderLock stages = WorkFolderLock.take(work, WorkFolderLock.Part.STAGES);
             PretrainingRun run = PretrainingRun.start(recipe, work, progress, phases)) {
            if (ContrastiveStage.done(work)) {
                StageRecord.TOWERS.checkDoneAs(work, recipe);
                return new Result(true, "contrastive", recipe.contrastive().steps(), Double.NaN, 0, work.resolve(ContrastiveStage.TEXT_FOLDER));
            }
            Result r = new StageLoop(run, checkpointEvery, sampleEvery, maxSeconds).train(new ContrastiveStage(run, tokenizer()));
            return r.finished() ? new Result(true, r.stage(), r.step(), r.loss(), r.seconds(), work.resolve(ContrastiveStage.TEXT_FOLDER)) : r;
        }
    }

    /**
     * Puts the contrastive stage's towers (after {@link #runContrastiveStage}) into {@code target} as one folder,
     * {@code tokenizer/}, {@code text_encoder/}, {@code image_encoder/} and {@code recipe.json}, replacing what was
     * there only once all of it is written: the world's CLIP as a judge ({@code eval.WorldClip}).
     */
    public void exportTowers(Path target) throws IOException {
        if (!ContrastiveStage.done(work)) throw new IOException(work + ": the contrastive stage is not done");
        Path staging = Files.createTempDirectory(target.toAbsolutePath().getParent(), "." + target.getFileName() + "-");
        for (String part : List.of("tokenizer", ContrastiveStage.TEXT_FOLDER, ContrastiveStage.IMAGE_FOLDER)) {
            DiffusersExport.copyFiles(work.resolve(part), staging.resolve(part));
        }
        new ObjectMapper().writerWithDefaultPrettyPrinter().writeValue(staging.resolve("recipe.json").toFile(), recipe);
        AtomicFiles.replaceFolder(staging, target);
    }

    /**
     * Only the decoder stage (once the VAE stage is done), for running beside the diffusion stage. Or, with
     * {@link #continueFrom} (its VAE not trained further), the continued model's decoder trained on alone from its
     * weights, on its encoder's latents, which the UNet knows: the result is the continued model with the new decoder
     * ({@code model/}), its record the continued one's under {@code continued_from}.
     */
    public Result runDecoderStage() throws IOException {
        try (WorkFolderLock decoder = WorkFolderLock.take(work, WorkFolderLock.Part.DECODER)) {
            return decoderStage();
        }
    }

    private Result decoderStage() throws IOException {
        checkOrigin(); // beside a main run, the decoder must start as it did (its data follows the run's continuation)
        if (!done("vae-decoder")) checkDecoderToTrain(DecoderClaim.Kind.DECODER_ONLY); // before the continued model's VAE is copied in
        boolean decoderOfModel = continueFrom != null && vaeOrigin == DiffusersExport.VaeOrigin.KEPT;
        if (decoderOfModel) checkNotAContinuedRunsFolder();
        if (decoderOfModel && !done("vae")) DiffusersExport.copyFolder(continueFrom.resolve("vae"), work.resolve("vae"));
        if (!done("vae")) throw new IOException(work + ": the VAE stage is not done yet; the decoder stage trains on its encoder");
        StageRecord.VAE.checkDoneAs(work, recipe);
        if (done("vae-decoder")) {
            StageRecord.DECODER.checkDoneAs(work, recipe);
        } else {
            // refused here only where the main run recorded another decoder since the check above; the VAE copied in
            // meanwhile is the continued model's, the same for every run of this folder (checkOrigin)
            DecoderClaim.record(work, recipe, DecoderClaim.Kind.DECODER_ONLY);
        }
        Files.createDirectories(work.resolve("samples"));
        try (PretrainingRun run = PretrainingRun.start(recipe, work, progress, phases)) {
            DiffusersExport export = new DiffusersExport(run, continueFrom, vaeOrigin);
            Result r = done("vae-decoder")
                    ? new Result(true, "decoder", recipe.decoderSteps(), Double.NaN, 0, null)
                    : new StageLoop(run, checkpointEvery, sampleEvery, maxSeconds).train(new DecoderStage(run, decoderContinuation()));
            if (!r.finished()) return r;
            DecoderClaim.clear(work);
            if (decoderOfModel) return new Result(true, r.stage(), r.step(), r.loss(), r.seconds(), export.exportWithNewDecoder(r.loss()));
            if (export.exported()) export.installDecoder();
            // beside a main run that has not exported yet, the decoder waits in its folder for that run to install it
            return new Result(true, r.stage(), r.step(), r.loss(), r.seconds(), export.exported() ? export.model() : work.resolve("vae-decoder"));
        }
    }

    /**
     * A run continuing a model with its VAE kept copies that VAE in as its {@code vae-decoder/} (nothing to train) and
     * exports its own UNet to {@code model/}: a decoder-only run of the same model in that folder took the copy for a
     * trained decoder and replaced the trained model with the continued one. It needs a folder of its own.
     */
    private void checkNotAContinuedRunsFolder() throws IOException {
        boolean ownExport = Files.isRegularFile(work.resolve("model").resolve("recipe.json")) && !decoderOnlyExport();
        if (Files.exists(work.resolve(KEPT_DECODER)) || Files.exists(work.resolve("checkpoint-diffusion.safetensors")) || ownExport) {
            throw new IOException(work + " is the work folder of a run that continues " + continueFrom + " and trains its UNet (its decoder is "
                    + "the model's, kept): training the model's decoder alone (--decoder-only) needs a work folder of its own");
        }
    }

    /** Whether the folder's model is a decoder-only run's: the continued model with its decoder trained alone. */
    private boolean decoderOnlyExport() throws IOException {
        Path exported = work.resolve("model").resolve("recipe.json");
        return Files.isRegularFile(exported) && new ObjectMapper().readTree(exported.toFile()).path("what").asText().contains("--decoder-only");
    }

    /** The decoder stage's name, as its checkpoint is named. */
    static final String DECODER_STAGE = "decoder";

    /** Marks a {@code vae-decoder/} copied from the continued model rather than trained in the folder. */
    private static final String KEPT_DECODER = "vae-decoder.kept";

    /** Where the last stage's training steps spent their time (the training benchmark reads it). */
    public Phases phases() {
        return phases;
    }

    /** The loss curves of every stage, in training order (means over 50 steps; the last run's values where a run was resumed). */
    public static void plotLosses(Path csv, Path png) throws IOException {
        new LossLog(csv, png).plot();
    }

    /** Whether {@code more} is {@code fewer}'s levels and one more as wide as the deepest ({@link UNetLevelAdded}). */
    static boolean levelAdded(java.util.List<Integer> fewer, java.util.List<Integer> more) {
        return more.size() == fewer.size() + 1 && more.subList(0, fewer.size()).equals(fewer) && more.get(fewer.size()).equals(fewer.get(fewer.size() - 1));
    }

    private static java.util.List<Integer> withDeepestRepeated(java.util.List<Integer> channels) {
        java.util.List<Integer> more = new java.util.ArrayList<>(channels);
        more.add(channels.get(channels.size() - 1));
        return more;
    }

    /** The whole factor by which every level's channels grow from {@code narrower} to {@code wider}, or 0 where there is none. */
    static int widening(java.util.List<Integer> narrower, java.util.List<Integer> wider) {
        if (narrower.size() != wider.size() || wider.get(0) % narrower.get(0) != 0) return 0;
        int factor = wider.get(0) / narrower.get(0);
        for (int i = 0; i < narrower.size(); i++) if (wider.get(i) != factor * narrower.get(i)) return 0;
        return factor;
    }

    /** How many continued runs lie behind an exported model: the depth of its recipe's {@code continued_from} chain. */
    static int continuations(Path recipeJson) throws IOException {
        int n = 0;
        for (JsonNode r = new ObjectMapper().readTree(recipeJson.toFile()).get("continued_from"); r != null; r = r.get("continued_from")) n++;
        return n;
    }

    /**
     * The decoder stage's continuation (its pictures): this run's where it trains a continued model's decoder further
     * (its VAE kept or trained further), else 0 (a VAE of this run's own).
     */
    private int decoderContinuation() {
        return continueFrom != null && vaeOrigin != DiffusersExport.VaeOrigin.NEW ? continuation : 0;
    }

    /**
     * The parts of the folder that earlier runs finished are used as they are, so each must be what this run's recipe
     * would train (before hours of training, not after them).
     */
    private void checkFinishedParts(DiffusersExport export, boolean exportedBefore) throws IOException {
        if (exportedBefore && decoderOnlyExport()) { // the folder's own run, first: what else differs is then beside the point
            throw new IOException(work + " holds a model made by --decoder-only (the continued model with its decoder trained alone), "
                    + "not a UNet trained here: a run that trains the UNet needs a work folder of its own");
        }
        if (exportedBefore) export.checkFinishedRecipe();
        if (recipe.frozenTextEncoder() && ContrastiveStage.done(work)) StageRecord.TOWERS.checkDoneAs(work, recipe);
        if (done("vae") && (continueFrom == null || vaeOrigin == DiffusersExport.VaeOrigin.NEW)) checkKeptVae(); // the recipe's own VAE
        if (done("vae")) StageRecord.VAE.checkDoneAs(work, recipe);
        if (done("vae-decoder")) StageRecord.DECODER.checkDoneAs(work, recipe);
        if (trainsItsDecoder()) checkDecoderToTrain(DecoderClaim.Kind.MAIN);
        // a stage stopped part-way goes on only under its recipe
        for (String stage : List.of("contrastive", "vae", "diffusion")) {
            TrainedWeights.checkResumable(TrainedWeights.checkpointOf(work, stage), recipe);
        }
    }

    /** Whether this run will train the folder's decoder (none is there yet, and none is kept from the continued model). */
    private boolean trainsItsDecoder() {
        return !done("vae-decoder") && !(continueFrom != null && vaeOrigin == DiffusersExport.VaeOrigin.KEPT);
    }

    /**
     * What a run of {@code kind} that will train the folder's decoder must agree with before it does anything: a critic
     * that judges, the decoder the run of the other kind asked for, and a decoder checkpoint (whichever run began it).
     */
    private void checkDecoderToTrain(DecoderClaim.Kind kind) throws IOException {
        checkCriticJudges();
        DecoderClaim.check(work, recipe, kind);
        TrainedWeights.checkResumable(work, DECODER_STAGE, recipe.decoderSteps(), recipe);
    }

    /** A decoder stage to train against a patch critic that would never judge it trains by L1 alone and would be recorded as adversarial. */
    private void checkCriticJudges() {
        if (recipe.decoderAdversarialWeight() > 0 && recipe.criticAloneSteps() >= recipe.decoderSteps()) {
            throw new IllegalArgumentException("the decoder's patch critic learns alone for its first " + recipe.criticAloneSteps() + " steps, and the decoder "
                    + "stage has " + recipe.decoderSteps() + ": the decoder would never learn from it (give more decoder steps, or fewer steps of the critic alone)");
        }
    }

    /** What a work folder's run started from, recorded when it starts: a rerun must start from the same. */
    static final String ORIGIN = "origin.json";

    /**
     * A work folder's parts and checkpoints come from where its run started (a model continued, and which of its parts
     * were kept): a rerun continuing another model, or the same otherwise, would mix them under the new one's name.
     * The first run in a folder records its start; folders begun before the record are taken as they are.
     */
    private void checkOrigin() throws IOException {
        Path record = work.resolve(ORIGIN);
        if (Files.isRegularFile(record)) {
            List<String> differ = BaseModelRecipe.differences(Files.readString(record), origin());
            if (!differ.isEmpty()) {
                throw new IOException(work + " holds a run started otherwise (" + String.join("; ", differ) + "): give the options it was started "
                        + "with to go on, or another work folder");
            }
        }
    }

    /** Where this run starts from, as the folder's origin record says it. */
    private ObjectNode origin() {
        ObjectNode now = new ObjectMapper().createObjectNode();
        now.put("continued_from", continueFrom == null ? null : continueFrom.toAbsolutePath().normalize().toString());
        now.put("vae", continueFrom == null ? "new" : vaeOrigin.name().toLowerCase(java.util.Locale.ROOT));
        now.put("new_unet", newUnet);
        now.put("new_text_encoder", newTextEncoder);
        return now;
    }

    /** The first run in a folder records where it started (not a run refused before it trained anything). */
    private void recordOrigin() throws IOException {
        Path record = work.resolve(ORIGIN);
        if (!Files.isRegularFile(record) && !trainedBeyondTheTowers()) {
            AtomicFiles.write(record, new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsBytes(origin()));
        }
    }

    /**
     * Whether a run before the origin record trained a VAE, UNet or decoder here (its log says so). The contrastive stage
     * alone, which no origin changes (`--contrastive-only` first, then the whole run), left the folder without a record.
     */
    private boolean trainedBeyondTheTowers() throws IOException {
        Path log = work.resolve("losses.csv");
        if (!Files.exists(log)) return false;
        try (java.util.stream.Stream<String> lines = Files.lines(log)) {
            return lines.anyMatch(l -> l.startsWith("vae,") || l.startsWith("diffusion,") || l.startsWith("decoder,"));
        }
    }

    /**
     * A VAE the work folder holds from an earlier run (or put there by hand) is what the diffusion stage learns the
     * latents of: it must be this recipe's, or the model would say one VAE and hold another.
     */
    private void checkKeptVae() throws IOException {
        VaeConfig there = VaeConfig.load(work.resolve("vae")), asked = recipe.vaeConfig(there.scalingFactor());
        if (!there.equals(asked)) {
            throw new IOException(work.resolve("vae") + ": a VAE of other shapes than the recipe's (channels " + there.blockOutChannels() + " x"
                    + there.latentChannels() + " at " + there.sampleSize() + " pixels, the recipe's " + asked.blockOutChannels() + " x"
                    + asked.latentChannels() + " at " + asked.sampleSize() + "): give the options its run was started with, or another work folder");
        }
    }

    /** Whether a VAE stage has left its result, {@code vae/} or {@code vae-decoder/}. */
    private boolean done(String vaeFolder) {
        return Files.isRegularFile(work.resolve(vaeFolder).resolve(DiffusersExport.WEIGHTS));
    }

    /**
     * Copies the tokenizer and VAE of the model that this run continues into the work folder. Its VAE already has the
     * fine-tuned decoder, so it stands for the results of both VAE stages, which are then skipped (unless the VAE
     * trains further: then both run, from its weights).
     */
    private void keepExportedParts() throws IOException {
        Map<String, String> kept = new java.util.LinkedHashMap<>(); // work folder part -> the model's
        if (!newTextEncoder) kept.put("tokenizer", "tokenizer");
        if (vaeOrigin == DiffusersExport.VaeOrigin.KEPT) {
            kept.put("vae", "vae");
            kept.put("vae-decoder", "vae");
        }
        if (recipe.frozenTextEncoder() && !newTextEncoder && Files.isDirectory(continueFrom.resolve("image_encoder"))) {
            // a frozen-text model continued: its frozen text encoder stays, no contrastive stage runs again. A model
            // whose text encoder learned with its UNet, or read other captions, lends only its UNet as the start: the
            // contrastive stage runs first
            kept.put(ContrastiveStage.TEXT_FOLDER, "text_encoder");
            kept.put(ContrastiveStage.IMAGE_FOLDER, "image_encoder");
        }
        if (kept.containsKey("vae-decoder") && !Files.isDirectory(work.resolve("vae-decoder"))) {
            AtomicFiles.write(work.resolve(KEPT_DECODER), (continueFrom.resolve("vae") + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8));
        }
        for (Map.Entry<String, String> part : kept.entrySet()) {
            if (!Files.isDirectory(work.resolve(part.getKey()))) DiffusersExport.copyFolder(continueFrom.resolve(part.getValue()), work.resolve(part.getKey()));
        }
    }

    private ClipTokenizer tokenizer() throws IOException {
        Path dir = work.resolve("tokenizer");
        if (Files.isRegularFile(dir.resolve("vocab.json"))) return ClipTokenizer.load(dir);
        progress.message("learning the world's BPE vocabulary");
        ClipTokenizer t = WorldTokenizer.create(recipe.textMaxLength(), recipe.captionDetails() > 0);
        Files.createDirectories(dir);
        t.save(dir);
        return ClipTokenizer.load(dir);
    }

}
