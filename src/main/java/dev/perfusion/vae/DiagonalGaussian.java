package dev.perfusion.vae;

import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

/** The encoder's posterior: a normal distribution per latent element, diffusers' DiagonalGaussianDistribution. */
public record DiagonalGaussian(Tensor mean, Tensor logvar) {

    public Tensor std() {
        return Ops.exp(Ops.mul(logvar, 0.5));
    }

    public Tensor variance() {
        return Ops.exp(logvar);
    }

    /** mean + std * noise, with {@code unitNoise} ~ N(0, 1) of the mean's shape (the caller owns the generator). */
    public Tensor sample(Tensor unitNoise) {
        if (!java.util.Arrays.equals(Ops.shape(unitNoise), Ops.shape(mean))) {
            throw new IllegalArgumentException("noise " + Ops.shapeString(unitNoise) + " does not match the latent mean "
                    + Ops.shapeString(mean));
        }
        return Ops.add(mean, Ops.mul(std(), unitNoise.to(mean.device(), mean.scalar_type())));
    }
}
