package dev.perfusion.vae;

import dev.perfusion.nn.Conv2d;
import dev.perfusion.nn.GroupNorm;
import dev.perfusion.nn.Module;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

/**
 * diffusers' ResnetBlock2D as the VAE uses it: no time embedding, output scale 1, 1x1 shortcut when channels change
 * (the world CLIP's image tower uses it too).
 */
public final class ResnetBlock2D extends Module {
    private final GroupNorm norm1;
    private final Conv2d conv1;
    private final GroupNorm norm2;
    private final Conv2d conv2;
    private final Conv2d convShortcut;

    public ResnetBlock2D(int in, int out, int groups, double eps) {
        this.norm1 = child("norm1", new GroupNorm(groups, in, eps));
        this.conv1 = child("conv1", new Conv2d(in, out, 3, 1, 1));
        this.norm2 = child("norm2", new GroupNorm(groups, out, eps));
        this.conv2 = child("conv2", new Conv2d(out, out, 3, 1, 1));
        this.convShortcut = in != out ? child("conv_shortcut", new Conv2d(in, out, 1, 1, 0)) : null;
    }

    public Tensor forward(Tensor x) {
        Tensor h = conv1.forward(Ops.silu(norm1.forward(x)));
        h = conv2.forward(Ops.silu(norm2.forward(h)));
        Tensor shortcut = convShortcut == null ? x : convShortcut.forward(x);
        return Ops.add(shortcut, h);
    }
}
