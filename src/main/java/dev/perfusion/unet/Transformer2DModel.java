package dev.perfusion.unet;

import dev.perfusion.nn.Conv2d;
import dev.perfusion.nn.GroupNorm;
import dev.perfusion.nn.Linear;
import dev.perfusion.nn.Module;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;

/** Feature map -> tokens -> transformer blocks -> feature map, with a residual around it all. */
final class Transformer2DModel extends Module {
    private final GroupNorm norm;
    private final Module projIn;
    final List<BasicTransformerBlock> blocks;
    private final Module projOut;
    private final boolean linearProjection;

    Transformer2DModel(long channels, long heads, int layers, long contextDim, int groups, boolean linearProjection) {
        this.linearProjection = linearProjection;
        this.norm = child("norm", new GroupNorm(groups, channels, 1e-6));
        this.projIn = child("proj_in", linearProjection ? new Linear(channels, channels, true) : new Conv2d(channels, channels, 1, 1, 0));
        List<BasicTransformerBlock> list = new ArrayList<>();
        for (int i = 0; i < layers; i++) list.add(new BasicTransformerBlock(channels, heads, contextDim));
        this.blocks = children("transformer_blocks", list);
        this.projOut = child("proj_out", linearProjection ? new Linear(channels, channels, true) : new Conv2d(channels, channels, 1, 1, 0));
    }

    Tensor forward(Tensor x, Tensor text) {
        long[] s = Ops.shape(x);
        long b = s[0], c = s[1], h = s[2], w = s[3];
        Tensor residual = x;
        Tensor hidden = norm.forward(x);
        if (linearProjection) {
            hidden = ((Linear) projIn).forward(toTokens(hidden, b, c, h, w));
        } else {
            hidden = toTokens(((Conv2d) projIn).forward(hidden), b, c, h, w);
        }
        for (BasicTransformerBlock block : blocks) hidden = block.forward(hidden, text);
        if (linearProjection) {
            hidden = toMap(((Linear) projOut).forward(hidden), b, c, h, w);
        } else {
            hidden = ((Conv2d) projOut).forward(toMap(hidden, b, c, h, w));
        }
        return Ops.add(hidden, residual);
    }

    private static Tensor toTokens(Tensor map, long b, long c, long h, long w) {
        return map.permute(0, 2, 3, 1).reshape(b, h * w, c);
    }

    private static Tensor toMap(Tensor tokens, long b, long c, long h, long w) {
        return tokens.reshape(b, h, w, c).permute(0, 3, 1, 2).contiguous();
    }
}
