package dev.perfusion.pretrain;

import dev.perfusion.nn.Conv2d;
import dev.perfusion.nn.GroupNorm;
import dev.perfusion.nn.Module;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * A patch critic as in SD's VAE training (taming-transformers' PatchGAN), sized for 64x64 world pictures: one score
 * per overlapping 26x26 patch, "drawn by the world" above 0, "decoded" below.
 * <pre>
 *   picture [B, 3, H, W] in [-1, 1]
 *   conv_in 4x4 stride 2, LeakyReLU 0.2           -> [B, c, H/2, W/2]
 *   down 4x4 stride 2, GroupNorm, LeakyReLU 0.2   -> [B, 2c, H/4, W/4]
 *   mid 3x3, GroupNorm, LeakyReLU 0.2             -> [B, 2c, H/4, W/4]
 *   conv_out 3x3                                  -> [B, 1, H/4, W/4]   a score per patch
 * </pre>
 */
final class PatchDiscriminator extends Module {
    private static final Scalar SLOPE = new Scalar(0.2);

    private final Conv2d convIn, down, mid, convOut;
    private final GroupNorm downNorm, midNorm;

    PatchDiscriminator(int channels) {
        this.convIn = child("conv_in", new Conv2d(3, channels, 4, 2, 1));
        this.down = child("down", new Conv2d(channels, 2L * channels, 4, 2, 1));
        this.downNorm = child("down_norm", new GroupNorm(8, 2L * channels, 1e-5));
        this.mid = child("mid", new Conv2d(2L * channels, 2L * channels, 3, 1, 1));
        this.midNorm = child("mid_norm", new GroupNorm(8, 2L * channels, 1e-5));
        this.convOut = child("conv_out", new Conv2d(2L * channels, 1, 3, 1, 1));
        namedParameters();
    }

    /** pictures [B, 3, H, W] -> patch scores [B, 1, H/4, W/4] */
    Tensor scores(Tensor pictures) {
        Tensor h = torch.leaky_relu(convIn.forward(pictures), SLOPE);
        h = torch.leaky_relu(downNorm.forward(down.forward(h)), SLOPE);
        h = torch.leaky_relu(midNorm.forward(mid.forward(h)), SLOPE);
        return convOut.forward(h);
    }
}
