package dev.perfusion.nn;

import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

public final class Conv2d extends Module {
    public final Param weight;
    public final Param bias;
    private final long stride;
    private final long padding;

    public Conv2d(long in, long out, long kernel, long stride, long padding) {
        this.weight = param("weight", out, in, kernel, kernel);
        this.bias = param("bias", out);
        this.stride = stride;
        this.padding = padding;
    }

    public Tensor forward(Tensor x) {
        return Ops.conv2d(x, weight.t(), bias.t(), stride, padding);
    }
}
