package dev.perfusion.sampling;

import org.bytedeco.pytorch.Tensor;

/** Unit Gaussian noise of a given shape (seeded by the caller, for reproducible sampling). */
public interface NoiseSource {
    Tensor randn(long... shape);
}
