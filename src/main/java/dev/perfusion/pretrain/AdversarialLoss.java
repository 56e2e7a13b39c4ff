package dev.perfusion.pretrain;

import dev.perfusion.nn.AdamW;
import dev.perfusion.nn.Param;
import dev.perfusion.nn.Weights;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.List;

/**
 * The adversarial half of SD's VAE loss (taming-transformers' VQGAN): a {@link PatchDiscriminator} learns to tell
 * world pictures from decoded ones (hinge loss), and the decoder learns to have its pictures scored as the world's.
 * An L1 loss alone draws the mean of what the latent leaves uncertain, so a 2-pixel eye or a bow's shape is
 * averaged into the fur; the critic instead asks for the sharp parts a world picture has.
 * <p>
 * The decoder's term is weighted adaptively, as in SD: its gradient at the decoder's last layer is {@code weight}
 * times the reconstruction loss's there, so that neither swamps the other however the critic's scale drifts. The
 * critic has its own AdamW; both are saved in the stage's checkpoint ({@link #state}).
 */
final class AdversarialLoss {
    /** Steps in which only the critic learns, so that its first judgements of the decoder mean something. */
    static final int CRITIC_ALONE = 300;
    private static final double CRITIC_LEARNING_RATE = 2e-4;
    private static final int CRITIC_CHANNELS = 64;

    private final PatchDiscriminator critic = new PatchDiscriminator(CRITIC_CHANNELS);
    private final AdamW optimizer;
    private final double weight;
    private final int criticAlone;
    private int criticSteps;

    /** {@code criticAlone}: the critic's steps before the decoder's term is on. */
    AdversarialLoss(double weight, long seed, int criticAlone) {
        this.criticAlone = criticAlone;
        if (!(weight > 0) || Double.isInfinite(weight)) throw new IllegalArgumentException("adversarial weight " + weight + ": expected a finite number above 0");
        this.weight = weight;
        Weights.initRandom(critic, seed);
        List<AdamW.Group> groups = new ArrayList<>();
        for (var e : critic.namedParameters().entrySet()) {
            Param p = e.getValue();
            p.t().set_requires_grad(true);
            groups.add(new AdamW.Group("critic." + e.getKey(), p.t(), CRITIC_LEARNING_RATE));
        }
        this.optimizer = new AdamW(groups, 0);
    }

    /** One step of the critic, world pictures against decoded ones (not backpropagated into the decoder); its hinge loss. */
    double trainCritic(Tensor world, Tensor decoded) {
        optimizer.zeroGrad(); // also what the decoder's last backward left in the critic
        Tensor real = Ops.mean(torch.relu(Ops.add(Ops.neg(critic.scores(world)), 1.0)));
        Tensor fake = Ops.mean(torch.relu(Ops.add(critic.scores(decoded.detach()), 1.0)));
        Tensor loss = Ops.mul(Ops.add(real, fake), 0.5);
        loss.backward();
        optimizer.step();
        criticSteps++;
        return Ops.item(loss);
    }

    /**
     * The decoder's adversarial term for {@code decoded}: minus the critic's mean score, weighted adaptively against
     * {@code reconstruction} at {@code lastLayer} (both must reach it); zero while the critic learns alone.
     */
    Tensor decoderTerm(Tensor decoded, Tensor reconstruction, Tensor lastLayer) {
        if (!judging()) return Ops.zerosLike(reconstruction);
        Tensor adversarial = Ops.neg(Ops.mean(critic.scores(decoded)));
        double balance = gradientNorm(reconstruction, lastLayer) / (gradientNorm(adversarial, lastLayer) + 1e-4);
        return Ops.mul(adversarial, weight * Math.min(balance, 1e4));
    }

    /** The critic's weights, its AdamW moments and its step count, by name, for the stage's checkpoint. */
    java.util.Map<String, Tensor> state() {
        java.util.Map<String, Tensor> out = new java.util.LinkedHashMap<>();
        critic.namedParameters().forEach((name, p) -> out.put("critic." + name, p.t().detach()));
        List<Tensor> moments = optimizer.state();
        for (int i = 0; i < moments.size(); i++) out.put("critic.adam." + i, moments.get(i));
        out.put(STEPS, Ops.scalar(criticSteps));
        return out;
    }

    /** Takes back what {@link #state} saved. */
    void restore(java.util.Map<String, Tensor> saved) {
        try (org.bytedeco.pytorch.NoGradGuard ng = new org.bytedeco.pytorch.NoGradGuard()) {
            critic.namedParameters().forEach((name, p) -> p.t().copy_(saved.get("critic." + name)));
        }
        List<Tensor> moments = new ArrayList<>();
        for (int i = 0; saved.containsKey("critic.adam." + i); i++) moments.add(saved.get("critic.adam." + i));
        this.criticSteps = (int) Math.round(Ops.item(saved.get(STEPS)));
        optimizer.restore(moments, criticSteps);
    }

    private static final String STEPS = "critic.steps";

    /** Whether the decoder's term is on (the critic has learned alone long enough). */
    boolean judging() {
        return criticSteps > criticAlone;
    }

    private static double gradientNorm(Tensor loss, Tensor at) {
        TensorVector g = torch.grad(new TensorVector(loss), new TensorVector(at), new TensorVector(), new BoolOptional(true), false, false);
        return Ops.item(g.get(0).norm());
    }
}
