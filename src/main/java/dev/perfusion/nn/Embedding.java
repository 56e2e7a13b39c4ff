package dev.perfusion.nn;

import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

public final class Embedding extends Module {
    public final Param weight;

    public Embedding(long count, long dim) {
        this.weight = param("weight", count, dim);
    }

    public Tensor forward(Tensor ids) {
        return Ops.embedding(weight.t(), ids);
    }
}
