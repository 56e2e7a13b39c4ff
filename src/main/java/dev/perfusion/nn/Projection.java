package dev.perfusion.nn;

import org.bytedeco.pytorch.Tensor;

/**
 * A linear map of attention inputs: what cross-attention's K and V projections are. The plain one is
 * {@link Linear}; an edited projection (Perfusion's gated rank-one edit) is swapped in without touching the model.
 */
public interface Projection {
    Tensor forward(Tensor x);

    /** The original weight W (out x in) that the projection is built on. */
    Tensor weight();
}
