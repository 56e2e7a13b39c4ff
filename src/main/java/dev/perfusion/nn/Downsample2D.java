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

    /**
     * The height and width of the level with {@code pixels} pixels of a model whose input is {@code height} x
     * {@code width}, each level downsampled from the one before (rounding as either padding does).
     */
    public static long[] levelSize(long height, long width, long pixels) {
        for (long roundUp : new long[] {1, 0}) {
            long h = height, w = width;
            while (h * w > pixels && (h > 1 || w > 1)) {
                h = (h + roundUp) / 2;
                w = (w + roundUp) / 2;
            }
            if (h * w == pixels) return new long[] {h, w};
        }
        throw new IllegalStateException("no level of " + height + "x" + width + " latents has " + pixels + " pixels");
    }
}
