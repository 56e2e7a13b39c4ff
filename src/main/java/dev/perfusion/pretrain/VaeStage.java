package dev.perfusion.pretrain;

import dev.perfusion.nn.Weights;
import dev.perfusion.pipeline.SeededNoise;
import dev.perfusion.pretrain.WorldBatches.Batch;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.vae.AutoencoderKL;
import dev.perfusion.vae.DiagonalGaussian;
import org.bytedeco.pytorch.Tensor;

/**
 * Stage one: the VAE from scratch on world pictures, the object-weighted L1 reconstruction loss and a small KL term.
 * Its encoder fixes the latent space that the UNet learns in; SD's scaling factor for it is measured at the end, on
 * the EMA weights. Leaves {@code vae/} in the work folder.
 */
final class VaeStage extends AutoencoderStage {
    /** As SD's VAE: just enough KL to keep the latents bounded; more makes the posterior noisy and the decoder blur. */
    private static final double KL_WEIGHT = 1e-6;

    VaeStage(PretrainingRun run) {
        super(run, AutoencoderKL.create(run.recipe().vaeConfig(1.0)));
        Weights.initRandom(vae, run.recipe().seed());
    }

    @Override
    public Plan plan() {
        BaseModelRecipe recipe = run.recipe();
        return new Plan("vae", "pretraining VAE", "L1", recipe.vaeSteps(), 0, recipe.vaeLr(), new WorldBatches.Series(DATA_SEED, recipe.vaeBatch(), false));
    }

    @Override
    public Loss loss(Batch batch, int step) {
        DiagonalGaussian posterior = vae.encode(batch.images());
        Tensor z = posterior.sample(new SeededNoise(run.recipe().seed() + step).randn(Ops.shape(posterior.mean())));
        Tensor m = posterior.mean();
        // KL(posterior || N(0, 1)), a mean over the latents
        Tensor kl = Ops.mul(Ops.mean(Ops.sub(Ops.add(Ops.mul(m, m), posterior.variance()), Ops.add(posterior.logvar(), 1.0))), 0.5);
        Tensor l1 = objectWeightedL1(batch, vae.decode(z));
        return new Loss(Ops.add(l1, Ops.mul(kl, KL_WEIGHT)), Ops.item(l1));
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
