package dev.perfusion.pretrain;

import dev.perfusion.nn.Weights;
import dev.perfusion.pipeline.SeededNoise;
import dev.perfusion.pretrain.WorldBatches.Batch;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.vae.AutoencoderKL;
import dev.perfusion.vae.DiagonalGaussian;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.io.IOException;
import java.nio.file.Path;

/**
 * Stage one: the VAE from scratch on world pictures, the object-weighted L1 reconstruction loss and a small KL term.
 * Its encoder fixes the latent space that the UNet learns in; SD's scaling factor for it is measured at the end, on
 * the EMA weights. Leaves {@code vae/} in the work folder.
 */
final class VaeStage extends AutoencoderStage {
    /** As SD's VAE: just enough KL to keep the latents bounded; more makes the posterior noisy and the decoder blur. */
    private static final double KL_WEIGHT = 1e-6;

    /** A trained VAE's first steps at the full rate would undo what it learned, before AdamW's moments settle. */
    private static final int CONTINUED_WARMUP = 100;

    /** 0 for a VAE from scratch, else the how-manyth continued run this is. */
    private final int continuation;

    /** A VAE from scratch. */
    VaeStage(PretrainingRun run) {
        super(run, AutoencoderKL.create(run.recipe().vaeConfig(1.0)));
        Weights.initRandom(vae, run.recipe().seed());
        this.continuation = 0;
    }

    /** A VAE trained further from {@code start}'s weights (an exported model's {@code vae/}), the {@code continuation}-th continued run. */
    VaeStage(PretrainingRun run, Path start, int continuation) throws IOException {
        super(run, AutoencoderKL.load(start, Ops.cpu(), ScalarType.Float));
        this.continuation = continuation;
    }

    @Override
    public Plan plan() {
        BaseModelRecipe recipe = run.recipe();
        return new Plan("vae", "pretraining VAE", "L1", recipe.vaeSteps(), continuation == 0 ? 0 : CONTINUED_WARMUP, recipe.vaeLr(),
                new WorldBatches.Series(DATA_SEED + continuation * DATA_SEED_CONTINUED, recipe.vaeBatch(), false));
    }

    /** Every part draws the step's sampling noise for the whole batch and takes its own rows: the parts add up to the batch. */
    @Override
    public Loss loss(Batch batch, int step, int partIndex, int parts) {
        Part part = Part.of(batch, partIndex, parts);
        DiagonalGaussian posterior = vae.encode(part.of(batch.images()));
        Tensor m = posterior.mean();
        long[] wholeShape = Ops.shape(m);
        wholeShape[0] = part.size();
        Tensor z = posterior.sample(part.of(new SeededNoise(run.recipe().seed() + step).randn(wholeShape)));
        // KL(posterior || N(0, 1)), a mean over the whole batch's latents
        Tensor kl = Ops.mul(part.shareOfMean(Ops.mean(Ops.sub(Ops.add(Ops.mul(m, m), posterior.variance()), Ops.add(posterior.logvar(), 1.0)))), 0.5);
        Tensor l1 = objectWeightedL1(batch, part, vae.decode(z));
        return new Loss(Ops.add(l1, Ops.mul(kl, KL_WEIGHT)), Ops.item(l1));
    }

    @Override
    StageRecord record() {
        return StageRecord.VAE;
    }

    @Override
    String resultFolder() {
        return "vae";
    }

    /** The inverse standard deviation of the latent means over fresh pictures. */
    @Override
    double latentScale(AutoencoderKL ema) {
        try (Scope s = Scope.inference()) {
            Batch b = run.batches().now(new WorldBatches.Series(DATA_SEED - 100_000, 64, false), 0);
            return 1.0 / Ops.item(ema.encode(b.images()).mean().std());
        }
    }
}
