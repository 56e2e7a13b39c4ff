package dev.perfusion.unet;

import dev.perfusion.nn.LayerNorm;
import dev.perfusion.nn.Module;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

/** Self-attention, cross-attention to the text, feed-forward; each pre-normed with a residual. */
final class BasicTransformerBlock extends Module {
    private final LayerNorm norm1;
    final Attention attn1;
    private final LayerNorm norm2;
    final Attention attn2;
    private final LayerNorm norm3;
    private final FeedForward ff;

    BasicTransformerBlock(long dim, long heads, long contextDim) {
        long headDim = dim / heads;
        this.norm1 = child("norm1", new LayerNorm(dim, 1e-5));
        this.attn1 = child("attn1", new Attention(dim, dim, heads, headDim));
        this.norm2 = child("norm2", new LayerNorm(dim, 1e-5));
        this.attn2 = child("attn2", new Attention(dim, contextDim, heads, headDim));
        this.norm3 = child("norm3", new LayerNorm(dim, 1e-5));
        this.ff = child("ff", new FeedForward(dim));
    }

    Tensor forward(Tensor x, Tensor text) {
        Tensor h = norm1.forward(x);
        x = Ops.add(attn1.forward(h, h), x);
        x = Ops.add(attn2.forward(norm2.forward(x), text), x);
        return Ops.add(ff.forward(norm3.forward(x)), x);
    }
}
