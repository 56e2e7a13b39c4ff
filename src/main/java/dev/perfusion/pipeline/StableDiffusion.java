package dev.perfusion.pipeline;

import dev.perfusion.io.FileStamp;
import dev.perfusion.io.layout.ModelSource;
import dev.perfusion.io.layout.ResolvedModel;
import dev.perfusion.io.layout.WeightHash;
import dev.perfusion.nn.Weights;
import dev.perfusion.sampling.SchedulerConfig;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Threads;
import dev.perfusion.text.ClipTextModel;
import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.unet.UNet2DConditionModel;
import dev.perfusion.util.Progress;
import dev.perfusion.vae.AutoencoderKL;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/** A loaded text-to-image model: tokenizer, text encoder, UNet, VAE and the scheduler configuration. */
public final class StableDiffusion {
    public final ClipTokenizer tokenizer;
    public final ClipTextModel textEncoder;
    public final UNet2DConditionModel unet;
    public final AutoencoderKL vae;
    public final SchedulerConfig schedulerConfig;
    public final Device device;
    public final torch.ScalarType dtype;
    /** Where the model came from, for messages and PNG metadata. */
    public final String name;
    private final ResolvedModel source;
    /** The files it was read from as they were then ({@link FileStamp}); null for a model assembled in memory. */
    private final String sourceStamp;
    private String unetHash;
    private String textEncoderHash;
    private int clipSkip;

    private StableDiffusion(ClipTokenizer tokenizer, ClipTextModel textEncoder, UNet2DConditionModel unet,
                            AutoencoderKL vae, SchedulerConfig schedulerConfig, Device device, torch.ScalarType dtype,
                            String name, ResolvedModel source, String sourceStamp) {
        this.tokenizer = tokenizer;
        this.textEncoder = textEncoder;
        this.unet = unet;
        this.vae = vae;
        this.schedulerConfig = schedulerConfig;
        this.device = device;
        this.dtype = dtype;
        this.name = name;
        this.source = source;
        this.sourceStamp = sourceStamp;
    }

    /** Loads a diffusers folder or single-file checkpoint, with its configs resolved by {@link ModelSource}. */
    public static StableDiffusion load(Path model, ModelSource.Options options, Device device, torch.ScalarType dtype,
                                       Progress progress) throws IOException {
        String stamp = FileStamp.of(model);
        ResolvedModel m = ModelSource.resolve(model, options);
        m.notes().forEach(progress::message);
        ClipTokenizer tokenizer = m.tokenizer();
        progress.update("loading " + model.getFileName(), 0, 3, "text encoder");
        ClipTextModel text = ClipTextModel.create(m.textEncoderConfig());
        // bf16 is for the UNet's and VAE's compute: the text encoder runs once per prompt, and its encodings feed the
        // concept gate (a sigmoid with temperature 0.15) and C^-1, so it stays in fp32 where the model is bf16
        Weights.load(text, m.textEncoderWeights(), "", device, dtype == torch.ScalarType.BFloat16 ? torch.ScalarType.Float : dtype, "text encoder");
        progress.update("loading " + model.getFileName(), 1, 3, "UNet");
        UNet2DConditionModel unet = UNet2DConditionModel.create(m.unetConfig());
        Weights.load(unet, m.unetWeights(), "", device, dtype, "UNet");
        progress.update("loading " + model.getFileName(), 2, 3, "VAE");
        AutoencoderKL vae = AutoencoderKL.create(m.vaeConfig());
        Weights.load(vae, m.vaeWeights(), "", device, dtype, "VAE");
        vae.storeConvolutionsChannelsLast(); // the VAE only infers: encoding training pictures, decoding latents
        progress.update("loading " + model.getFileName(), 3, 3, "");
        // each part is read by name when it is loaded: a copy or export writing the model meanwhile mixes two models
        if (!FileStamp.of(model).equals(stamp)) {
            throw new IOException(model + " changed on disk while it was being read (a copy or an export writing it?); "
                    + "read it again once it is written");
        }
        return new StableDiffusion(tokenizer, text, unet, vae, m.schedulerConfig(), device,
                dtype, model.getFileName().toString(), m, stamp);
    }

    /** Assembles a model from parts already built (random weights for benchmarks, or a model being trained). */
    public static StableDiffusion of(ClipTokenizer tokenizer, ClipTextModel text, UNet2DConditionModel unet,
                                     AutoencoderKL vae, SchedulerConfig schedulerConfig, String name) {
        return new StableDiffusion(tokenizer, text, unet, vae, schedulerConfig, Ops.cpu(), torch.ScalarType.Float, name, null, null);
    }

    /**
     * Whether the UNet is so narrow (at most {@value #SMALL_UNET_WIDTH} channels: the bundled model, the fixtures)
     * that each of its operations runs faster on one thread than split over two: then work runs side by side
     * instead ({@link Threads#sideBySide}). Measured on the bundled model (32-128 channels): a concept training step
     * 0.24 s on one thread, 0.31 s on two; eight pictures 5 s and 6 s. SD's (320-1280) gains from every thread.
     */
    public boolean smallUNet() {
        return unet.config().blockOutChannels().stream().mapToInt(Integer::intValue).max().orElse(0) <= SMALL_UNET_WIDTH;
    }

    private static final int SMALL_UNET_WIDTH = 256;

    /**
     * How many of {@code parts} independent pieces of work (pictures, micro-batches) to run side by side: one per
     * configured thread on a small UNet, else one at a time (a large UNet's operations use every thread themselves).
     */
    public int sideBySideWorkers(int parts) {
        return smallUNet() ? Math.max(1, Math.min(Threads.configured(), parts)) : 1;
    }

    public int vaeScaleFactor() {
        return vae.config().downsamplingFactor();
    }

    /** The side of the pictures the model was trained on (its UNet's latent size times the VAE's factor). */
    public int pictureSize() {
        return unet.config().sampleSize() * vaeScaleFactor();
    }

    public long latentChannels() {
        return unet.config().inChannels();
    }

    /** Content hash of the UNet weights (sampled SHA-256), computed once. */
    public synchronized String unetHash() {
        if (unetHash == null) unetHash = source == null ? "unsaved" : WeightHash.sampled(unchangedSource().unetWeights());
        return unetHash;
    }

    /** Content hash of the text encoder weights; ties covariance files and concepts to an encoder. */
    public synchronized String textEncoderHash() {
        if (textEncoderHash == null) textEncoderHash = source == null ? "unsaved" : WeightHash.sampled(unchangedSource().textEncoderWeights());
        return textEncoderHash;
    }

    /** Whether the files the model was read from are still those on disk (true for a model assembled in memory). */
    public boolean filesUnchanged() throws IOException {
        return sourceStamp == null || FileStamp.of(source.source()).equals(sourceStamp);
    }

    /**
     * The files the weights were read from, for a hash taken when first asked (it costs a pass over the weights): the
     * hash of files rewritten since would tie concepts to weights this process never drew with.
     */
    private ResolvedModel unchangedSource() {
        try {
            if (filesUnchanged()) return source;
        } catch (IOException e) {
            throw new UncheckedIOException(source.source() + ": cannot be read again to hash its weights: " + e.getMessage(), e);
        }
        throw new UncheckedIOException(new IOException(source.source() + " changed on disk since this model was read, so the "
                + "weights in memory can no longer be hashed from it: read the model again"));
    }

    /** Token ids [B, 77] of the prompts; over-long prompts are truncated with a warning. */
    public Tensor tokenize(List<String> prompts, Consumer<String> warnings) {
        return tokenize(tokenizer, prompts, warnings);
    }

    /** The same with another tokenizer (this one plus learned concepts' words). */
    public Tensor tokenize(ClipTokenizer tokenizer, List<String> prompts, Consumer<String> warnings) {
        int max = tokenizer.maxLength();
        long[] ids = new long[prompts.size() * max];
        for (int i = 0; i < prompts.size(); i++) {
            ClipTokenizer.Encoding e = tokenizer.encodeForModel(prompts.get(i));
            if (e.truncated()) {
                warnings.accept("warning: the prompt is longer than " + (max - 2) + " tokens; " + e.droppedTokens()
                        + " tokens were cut: \"" + abbreviate(prompts.get(i)) + "\"");
            }
            System.arraycopy(e.ids(), 0, ids, i * max, max);
        }
        return Ops.fromLongs(ids, prompts.size(), max).to(device, torch.ScalarType.Long);
    }

    /** Text encodings [B, 77, D] of the prompts, as the UNet's cross-attention reads them; each distinct prompt encoded once. */
    public Tensor encodePrompts(List<String> prompts, Consumer<String> warnings) {
        DistinctPrompts batch = DistinctPrompts.of(prompts);
        return batch.batchRows(textEncoder.encode(tokenize(batch.distinct(), warnings), clipSkip));
    }

    /**
     * Encodes with the output of the k-th layer from the end (then the final layer norm), as diffusers'
     * clip_skip; 0 is the last layer. Applies to every prompt this model encodes, with or without concepts.
     */
    public void setClipSkip(int layers) {
        if (layers < 0 || layers >= textEncoder.config().numHiddenLayers()) {
            int n = textEncoder.config().numHiddenLayers();
            throw new IllegalArgumentException("the text encoder layers to skip must be in 0.." + (n - 1) + " (it has " + n
                    + " layers), got " + layers);
        }
        this.clipSkip = layers;
    }

    public int clipSkip() { return clipSkip; }

    private static String abbreviate(String s) {
        return s.length() <= 60 ? s : s.substring(0, 57) + "...";
    }

    public static List<String> repeat(String s, int n) {
        List<String> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) out.add(s);
        return out;
    }
}
