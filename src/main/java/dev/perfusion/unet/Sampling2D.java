package dev.perfusion.unet;

import dev.perfusion.nn.Conv2d;
import dev.perfusion.nn.Module;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/** The resolution rises between UNet levels (the downsamplers are {@link dev.perfusion.nn.Downsample2D}). */
final class Sampling2D {
    private Sampling2D() {}

    /** Nearest-neighbour upsampling to the size of the skip it meets (2x, or odd sizes), then a 3x3 convolution. */
    static final class Upsample2D extends Module {
        private final Conv2d conv;

        Upsample2D(long channels) {
            this.conv = child("conv", new Conv2d(channels, channels, 3, 1, 1));
        }

        Tensor forward(Tensor x, long height, long width) {
            return conv.forward(torch.upsample_nearest2d(x, new long[] {height, width}));
        }
    }

    static long[] spatial(Tensor t) {
        long[] s = Ops.shape(t);
        return new long[] {s[2], s[3]};
    }
}
