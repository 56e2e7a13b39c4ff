package dev.perfusion.nn;

import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

/** y = x W^T + b. Also the default K/V {@link Projection} of attention. */
public final class Linear extends Module implements Projection {
    public final Param weight;
    public final Param bias;
    public final long in;
    public final long out;

    public Linear(long in, long out, boolean bias) {
        this.in = in;
        this.out = out;
        this.weight = param("weight", out, in);
        this.bias = bias ? param("bias", out) : null;
    }

    @Override
    public Tensor forward(Tensor x) {
        return Ops.linear(x, weight.t(), bias == null ? null : bias.t());
    }

    @Override
    public Tensor weight() {
        return weight.t();
    }
}
