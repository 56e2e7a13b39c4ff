package dev.perfusion.unet;

import dev.perfusion.nn.Linear;
import dev.perfusion.nn.Module;
import dev.perfusion.nn.Projection;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

/**
 * Multi-head attention of a transformer block: self-attention (attn1) or cross-attention to the text (attn2).
 * K and V are {@link Projection}s that can be swapped (Perfusion's edited projections); the original Linear
 * layers stay registered as to_k / to_v so the weights keep their names.
 */
public final class Attention extends Module {
    final Linear toQ;
    final Linear toK;
    final Linear toV;
    final Linear toOut;
    private final long heads;
    private final long contextDim;
    private Projection key;
    private Projection value;

    Attention(long queryDim, long contextDim, long heads, long headDim) {
        long inner = heads * headDim;
        this.heads = heads;
        this.contextDim = contextDim;
        this.toQ = child("to_q", new Linear(queryDim, inner, false));
        this.toK = child("to_k", new Linear(contextDim, inner, false));
        this.toV = child("to_v", new Linear(contextDim, inner, false));
        this.toOut = children("to_out", java.util.List.of(new Linear(inner, queryDim, true))).get(0);
        this.key = toK;
        this.value = toV;
    }

    /** x [B, N, C]; context [B, T, D] (x itself for self-attention). */
    public Tensor forward(Tensor x, Tensor context) {
        Tensor q = splitHeads(toQ.forward(x));
        Tensor k = splitHeads(key.forward(context));
        Tensor v = splitHeads(value.forward(context));
        long headDim = Ops.shape(q)[3];
        Tensor attended = Ops.attention(q, k, v, null, 1.0 / Math.sqrt(headDim));
        return toOut.forward(mergeHeads(attended));
    }

    /** [B, N, H*d] -> [B, H, N, d] */
    private Tensor splitHeads(Tensor t) {
        long[] s = Ops.shape(t);
        return t.reshape(s[0], s[1], heads, s[2] / heads).transpose(1, 2);
    }

    /** [B, H, N, d] -> [B, N, H*d] */
    private static Tensor mergeHeads(Tensor t) {
        long[] s = Ops.shape(t);
        return t.transpose(1, 2).reshape(s[0], s[2], s[1] * s[3]);
    }

    public Projection key() { return key; }

    public Projection value() { return value; }

    public void setKey(Projection p) { this.key = p == null ? toK : p; }

    public void setValue(Projection p) { this.value = p == null ? toV : p; }

    /** The original, unedited K and V layers. */
    public Linear originalKey() { return toK; }

    public Linear originalValue() { return toV; }

    /** Width of the encodings K and V read (the text encoder's width for cross-attention). */
    public long contextDim() { return contextDim; }

    /** Output width of K and V (heads x head size). */
    public long innerDim() { return toK.out; }
}
