package dev.perfusion.nn;

import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

/**
 * diffusers' Downsample2D with its convolution: a strided 3x3 convolution halving the resolution. With padding 1 (the
 * UNets of SD) an odd size is rounded up; with padding 0 (the VAE's) the original LDM pads only the right and the
 * bottom, and an odd size is rounded down.
 */
public final class Downsample2D extends Module {
    private final Conv2d conv;
    private final boolean padRightAndBottom;

    public Downsample2D(long channels, long padding) {
        this.conv = child("conv", new Conv2d(channels, channels, 3, 2, padding));
        this.padRightAndBottom = padding == 0;
    }

    public Tensor forward(Tensor x) {
        return conv.forward(padRightAndBottom ? Ops.pad2d(x, 0, 1, 0, 1) : x);
    }
}
