package dev.perfusion.pretrain;

import dev.perfusion.pretrain.WorldBatches.Batch;
import dev.perfusion.tensor.Ops;
import dev.perfusion.vae.AutoencoderKL;
import dev.perfusion.vae.DiagonalGaussian;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.io.IOException;

/**
 * Stage three: the VAE stage's decoder trained longer, alone, on its frozen encoder's latent means (no sampling noise,
 * no KL), as SD's fine-tuned decoders: sharper pictures from the latent space that the UNet learned. It needs only the
 * VAE stage's result, so it may run beside the diffusion stage. Leaves {@code vae-decoder/} in the work folder.
 */
final class DecoderStage extends AutoencoderStage {
    private final int continuation;

    /** {@code continuation}: 0, or the how-manyth continued run whose VAE trains further. */
    DecoderStage(PretrainingRun run, int continuation) throws IOException {
        super(run, AutoencoderKL.load(run.work().resolve("vae"), Ops.cpu(), ScalarType.Float));
        this.continuation = continuation;
    }

    @Override
    public Plan plan() {
        BaseModelRecipe recipe = run.recipe();
        return new Plan("decoder", "fine-tuning the VAE decoder", "L1", recipe.decoderSteps(), 0, recipe.vaeLr() * 0.5,
                new WorldBatches.Series(DATA_SEED + 100_000_000L + continuation * DATA_SEED_CONTINUED, recipe.vaeBatch(), false));
    }

    @Override
    public boolean learns(String parameter) {
        return parameter.startsWith("decoder.") || parameter.startsWith("post_quant_conv.");
    }

    @Override
    public Loss loss(Batch batch, int step, int partIndex, int parts) {
        Part part = Part.of(batch, partIndex, parts);
        DiagonalGaussian posterior;
        try (NoGradGuard ng = new NoGradGuard()) {
            posterior = vae.encode(part.of(batch.images()));
        }
        Tensor l1 = objectWeightedL1(batch, part, vae.decode(posterior.mean()));
        return new Loss(l1, Ops.item(l1));
    }

    @Override
    String resultFolder() {
        return "vae-decoder";
    }

    /** The VAE stage's: the latents are the same. */
    @Override
    double latentScale(AutoencoderKL ema) {
        return vae.config().scalingFactor();
    }
}
