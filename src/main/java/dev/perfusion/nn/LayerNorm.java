package dev.perfusion.nn;

import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

public final class LayerNorm extends Module {
    public final Param weight;
    public final Param bias;
    private final double eps;

    public LayerNorm(long dim, double eps) {
        this.weight = param("weight", dim);
        this.bias = param("bias", dim);
        this.eps = eps;
    }

    public Tensor forward(Tensor x) {
        return Ops.layerNorm(x, weight.t(), bias.t(), eps);
    }
}
