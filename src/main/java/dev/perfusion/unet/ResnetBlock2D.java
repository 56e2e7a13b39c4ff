package dev.perfusion.unet;

import dev.perfusion.nn.Conv2d;
import dev.perfusion.nn.GroupNorm;
import dev.perfusion.nn.Linear;
import dev.perfusion.nn.Module;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

/** norm-silu-conv twice, the time embedding added in between, a 1x1 shortcut when the width changes. */
final class ResnetBlock2D extends Module {
    private final GroupNorm norm1;
    private final Conv2d conv1;
    private final Linear timeEmbProj;
    private final GroupNorm norm2;
    private final Conv2d conv2;
    private final Conv2d convShortcut;
    private final double outputScaleFactor;

    ResnetBlock2D(long in, long out, long timeEmbedDim, int groups, double eps, double outputScaleFactor) {
        this.norm1 = child("norm1", new GroupNorm(groups, in, eps));
        this.conv1 = child("conv1", new Conv2d(in, out, 3, 1, 1));
        this.timeEmbProj = child("time_emb_proj", new Linear(timeEmbedDim, out, true));
        this.norm2 = child("norm2", new GroupNorm(groups, out, eps));
        this.conv2 = child("conv2", new Conv2d(out, out, 3, 1, 1));
        this.convShortcut = in != out ? child("conv_shortcut", new Conv2d(in, out, 1, 1, 0)) : null;
        this.outputScaleFactor = outputScaleFactor;
    }

    Tensor forward(Tensor x, Tensor timeEmbedding) {
        Tensor h = conv1.forward(Ops.silu(norm1.forward(x)));
        Tensor t = timeEmbProj.forward(Ops.silu(timeEmbedding));
        h = Ops.add(h, t.unsqueeze(2).unsqueeze(3));
        h = conv2.forward(Ops.silu(norm2.forward(h)));
        Tensor shortcut = convShortcut == null ? x : convShortcut.forward(x);
        Tensor sum = Ops.add(shortcut, h);
        return outputScaleFactor == 1.0 ? sum : Ops.div(sum, outputScaleFactor);
    }
}
