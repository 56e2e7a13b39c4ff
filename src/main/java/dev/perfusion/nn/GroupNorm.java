package dev.perfusion.nn;

import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

public final class GroupNorm extends Module {
    public final Param weight;
    public final Param bias;
    private final long groups;
    private final double eps;

    public GroupNorm(long groups, long channels, double eps) {
        if (channels % groups != 0) {
            throw new IllegalArgumentException(channels + " channels cannot be split into " + groups + " groups");
        }
        this.weight = param("weight", channels);
        this.bias = param("bias", channels);
        this.groups = groups;
        this.eps = eps;
    }

    public Tensor forward(Tensor x) {
        return Ops.groupNorm(x, groups, weight.t(), bias.t(), eps);
    }
}
