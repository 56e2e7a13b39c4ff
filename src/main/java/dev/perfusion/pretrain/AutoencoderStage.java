package dev.perfusion.pretrain;

import dev.perfusion.io.ImageGrid;
import dev.perfusion.io.Png;
import dev.perfusion.io.Safetensors;
import dev.perfusion.nn.Module;
import dev.perfusion.pretrain.WorldBatches.Batch;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.vae.AutoencoderKL;
import org.bytedeco.pytorch.Tensor;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What the two VAE stages ({@link VaeStage}, {@link DecoderStage}) share: one VAE trained on world pictures with an L1
 * loss weighted towards the object, its reconstructions of the same pictures as samples, and a VAE folder in the work
 * folder (fp32 EMA weights, the latent scaling factor in the config) as the result.
 */
abstract class AutoencoderStage implements Stage {
    /** The VAE stages train on the world's samples from here on; their test pictures lie just below. */
    static final long DATA_SEED = 1 << 30;
    /** Each continued run whose VAE trains further draws pictures no run before it did: the n-th starts n × this further on. */
    static final long DATA_SEED_CONTINUED = 1L << 33;

    protected final PretrainingRun run;
    protected final AutoencoderKL vae;

    protected AutoencoderStage(PretrainingRun run, AutoencoderKL vae) {
        this.run = run;
        this.vae = vae;
    }

    /** The result's folder in the work folder. */
    abstract String resultFolder();

    /** The recipe's parts that the result is trained with, kept beside it. */
    abstract StageRecord record();

    /** The result's scaling factor, SD's {@code scaling_factor}: latents times it have about unit variance. */
    abstract double latentScale(AutoencoderKL ema);

    @Override
    public final List<Module> modules() {
        return List.of(vae);
    }

    /** The same eight pictures over the EMA weights' reconstructions of them: {@code samples/<stage>-<step>.png}. */
    @Override
    public final void samples(TrainedWeights weights, int step) throws IOException {
        AutoencoderKL ema = weights.ema(0, AutoencoderKL.class);
        try (Scope s = Scope.inference()) {
            Batch b = run.batches().now(new WorldBatches.Series(DATA_SEED - 1000, 8, false), 0);
            Tensor r = ema.decode(ema.encode(b.images()).mean());
            List<BufferedImage> originals = Png.toImages(b.images()), decoded = Png.toImages(r);
            BufferedImage grid = ImageGrid.of(List.of(originals, decoded), List.of("picture", "VAE"), List.of(), 128);
            Png.write(run.work().resolve("samples").resolve(String.format(Locale.ROOT, "%s-%05d.png", plan().name(), step)), grid, Map.of());
        }
    }

    @Override
    public final Path finish(TrainedWeights weights, double loss) throws IOException {
        AutoencoderKL ema = weights.ema(0, AutoencoderKL.class);
        double scale = latentScale(ema);
        run.progress().message(String.format(Locale.ROOT, "%s done; latent scaling factor %.5f", plan().name(), scale));
        record().write(run.work(), run.recipe());
        DiffusersExport.writeComponent(run.work().resolve(resultFolder()), run.recipe().vaeJson(scale), DiffusersExport.WEIGHTS, ema, Safetensors.StoredType.F32);
        return null;
    }

    @Override
    public final Loss loss(Batch batch, int step) {
        return loss(batch, step, 0, 1);
    }

    /** A VAE's convolutions at the pictures' full size are small enough that the cores gain more side by side. */
    @Override
    public boolean splitsBatches() {
        return true;
    }

    /** The rows of one part of a batch (the parts in order): the first, how many, of how many in the whole batch. */
    record Part(int from, int rows, int size) {
        static Part of(Batch batch, int part, int parts) {
            int size = (int) Ops.shape(batch.images())[0], from = part * size / parts;
            return new Part(from, (part + 1) * size / parts - from, size);
        }

        /** This part's rows of a tensor of the whole batch. */
        Tensor of(Tensor wholeBatch) {
            return wholeBatch.narrow(0, from, rows);
        }

        /**
         * Its share of a mean over the whole batch: the mean over its rows, times its share of the rows, so that the
         * parts add up to the whole batch's mean (the whole batch is left as it is).
         */
        Tensor shareOfMean(Tensor partMean) {
            return rows == size ? partMean : Ops.mul(partMean, rows / (double) size);
        }
    }

    /**
     * Mean absolute error over the whole batch, each pixel weighted 5 on the object and 1 elsewhere (divided by the
     * batch's mean weight): the share of it of the part whose reconstruction this is.
     */
    protected static Tensor objectWeightedL1(Batch batch, Part part, Tensor reconstruction) {
        Tensor weight = Ops.add(Ops.mul(batch.primaryMasks(), 4.0), 1.0);
        Tensor error = Ops.mul(reconstruction.sub(part.of(batch.images())).abs(), part.of(weight));
        return Ops.div(part.shareOfMean(Ops.mean(error)), Ops.item(weight.mean()));
    }
}
