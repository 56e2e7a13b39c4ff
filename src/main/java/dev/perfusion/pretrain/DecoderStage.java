package dev.perfusion.pretrain;

import dev.perfusion.nn.Param;
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
 * no KL), as SD's fine-tuned decoders: sharper pictures from the latent space that the UNet learned. With the recipe's
 * decoder adversarial weight, a patch critic joins the L1 loss ({@link AdversarialLoss}), as in SD's VAE; its critic
 * then judges whole batches, so they are not split. It needs only the VAE stage's result, so it may run beside the
 * diffusion stage. Leaves {@code vae-decoder/} in the work folder.
 */
final class DecoderStage extends AutoencoderStage {
    /** The loss log's name for the critic's hinge loss. */
    static final String CRITIC = "critic";

    private final int continuation;
    /** Null where the recipe's decoder adversarial weight is 0. */
    private final AdversarialLoss adversarial;
    private final Param lastLayer;

    /** {@code continuation}: 0, or the how-manyth continued run whose VAE trains further. */
    DecoderStage(PretrainingRun run, int continuation) throws IOException {
        super(run, AutoencoderKL.load(run.work().resolve("vae"), Ops.cpu(), ScalarType.Float));
        this.continuation = continuation;
        BaseModelRecipe recipe = run.recipe();
        double weight = recipe.decoderAdversarialWeight();
        this.adversarial = weight > 0 ? new AdversarialLoss(weight, recipe.seed() + 3 + continuation, recipe.criticAloneSteps()) : null;
        this.lastLayer = vae.namedParameters().get("decoder.conv_out.weight");
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
    public boolean splitsBatches() {
        return adversarial == null;
    }

    @Override
    public String regulariser() {
        return adversarial == null ? null : CRITIC;
    }

    @Override
    public java.util.Map<String, Tensor> learnedBeside() {
        return adversarial == null ? java.util.Map.of() : adversarial.state();
    }

    @Override
    public void restoreBeside(java.util.Map<String, Tensor> saved) {
        adversarial.restore(saved);
    }

    @Override
    public String withoutBeside() {
        return "the patch critic starts afresh and learns alone for " + run.recipe().criticAloneSteps()
                + " steps again, in which (and in all of the steps left, if fewer) the decoder learns by its L1 loss alone";
    }

    /** L1, plus the critic's term where the recipe has one (the critic's own hinge loss is logged as {@code critic}). */
    @Override
    public Loss loss(Batch batch, int step, int partIndex, int parts) {
        Part part = Part.of(batch, partIndex, parts);
        Tensor world = part.of(batch.images());
        DiagonalGaussian posterior;
        try (NoGradGuard ng = new NoGradGuard()) {
            posterior = vae.encode(world);
        }
        Tensor decoded = vae.decode(posterior.mean());
        Tensor l1 = objectWeightedL1(batch, part, decoded);
        if (adversarial == null) return new Loss(l1, Ops.item(l1));
        double critic = adversarial.trainCritic(world, decoded);
        return new Loss(Ops.add(l1, adversarial.decoderTerm(decoded, l1, lastLayer.t())), Ops.item(l1), critic);
    }

    @Override
    StageRecord record() {
        return StageRecord.DECODER;
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
