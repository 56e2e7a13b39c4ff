package dev.perfusion.perfusion;

import dev.perfusion.nn.Projection;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

/**
 * A K or V projection whose whole weight matrix is replaced by a tuned copy: the Custom Diffusion baseline, which
 * fine-tunes every cross-attention K and V matrix (SD's have no bias).
 */
public final class FineTunedProjection implements Projection {
    private final Projection original;
    private final Tensor weight;

    public FineTunedProjection(Projection original, Tensor tunedWeight) {
        if (!java.util.Arrays.equals(Ops.shape(original.weight()), Ops.shape(tunedWeight))) {
            throw new IllegalArgumentException("tuned weight " + Ops.shapeString(tunedWeight) + " does not match the projection's "
                    + Ops.shapeString(original.weight()));
        }
        this.original = original;
        this.weight = tunedWeight;
    }

    @Override
    public Tensor forward(Tensor x) {
        return Ops.linear(x, weight.to(x), null);
    }

    @Override
    public Tensor weight() {
        return original.weight();
    }
}
