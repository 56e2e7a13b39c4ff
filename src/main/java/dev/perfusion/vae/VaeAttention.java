package dev.perfusion.vae;

import dev.perfusion.nn.GroupNorm;
import dev.perfusion.nn.Linear;
import dev.perfusion.nn.Module;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

import java.util.List;

/**
 * diffusers' {@code Attention} as built by the VAE's UNetMidBlock2D: group-normed input, one head as wide as the
 * channels, every pixel a token, output added to the input.
 */
final class VaeAttention extends Module {
    private final GroupNorm groupNorm;
    private final Linear toQ;
    private final Linear toK;
    private final Linear toV;
    private final Linear toOut;
    private final int channels;

    VaeAttention(int channels, int groups, double eps) {
        this.channels = channels;
        this.groupNorm = child("group_norm", new GroupNorm(groups, channels, eps));
        this.toQ = child("to_q", new Linear(channels, channels, true));
        this.toK = child("to_k", new Linear(channels, channels, true));
        this.toV = child("to_v", new Linear(channels, channels, true));
        // to_out is a ModuleList [Linear, Dropout]; only index 0 holds weights
        this.toOut = children("to_out", List.of(new Linear(channels, channels, true))).get(0);
    }

    Tensor forward(Tensor x) {
        long[] s = Ops.shape(x);
        Tensor tokens = Ops.transpose(Ops.reshape(groupNorm.forward(x), s[0], s[1], s[2] * s[3]), 1, 2);
        // [B, 1 head, H*W, C]
        Tensor q = toQ.forward(tokens).unsqueeze(1);
        Tensor k = toK.forward(tokens).unsqueeze(1);
        Tensor v = toV.forward(tokens).unsqueeze(1);
        Tensor attended = Ops.attention(q, k, v, null, 1.0 / Math.sqrt(channels)).squeeze(1);
        Tensor out = toOut.forward(attended);
        Tensor spatial = Ops.reshape(Ops.transpose(out, 1, 2), s[0], s[1], s[2], s[3]);
        return Ops.add(x, spatial); // the residual first: the sum keeps the block's input layout, not the transposed view's
    }
}
