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
    /** Receives this thread's cross-attention probabilities while set: pictures drawn side by side observe their own. */
    private static final ThreadLocal<java.util.function.Consumer<Tensor>> CROSS_ATTENTION_OBSERVER = new ThreadLocal<>();
    /** Set while this thread draws with the model's own K and V, whatever edits are installed. */
    private static final ThreadLocal<Boolean> ORIGINAL_PROJECTIONS = ThreadLocal.withInitial(() -> false);

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
        boolean original = ORIGINAL_PROJECTIONS.get();
        Tensor q = splitHeads(toQ.forward(x));
        Tensor k = splitHeads((original ? toK : key).forward(context));
        Tensor v = splitHeads((original ? toV : value).forward(context));
        long headDim = Ops.shape(q)[3];
        double scale = 1.0 / Math.sqrt(headDim);
        CrossAttentionBias crossBias = context == x ? null : CrossAttentionBias.current();
        Tensor bias = crossBias == null ? null : crossBias.logits(Ops.shape(q)[0], Ops.shape(q)[2], Ops.shape(k)[2]);
        java.util.function.Consumer<Tensor> observer = context == x ? null : CROSS_ATTENTION_OBSERVER.get();
        if (observer != null) {
            // explicit softmax(QK^T) so that someone can look at where each token attends
            Tensor probabilities = Ops.attentionProbabilities(q, k, bias, scale);
            observer.accept(probabilities);
            return toOut.forward(mergeHeads(Ops.weigh(probabilities, v)));
        }
        return toOut.forward(mergeHeads(Ops.attention(q, k, v, bias, scale)));
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

    /**
     * Runs {@code body} with every attention layer's original K and V on this thread (the model as loaded, whatever
     * edits are installed); pictures drawn side by side on other threads keep theirs.
     */
    public static <T> T withOriginalProjections(java.util.function.Supplier<T> body) {
        boolean outer = ORIGINAL_PROJECTIONS.get();
        ORIGINAL_PROJECTIONS.set(true);
        try {
            return body.get();
        } finally {
            ORIGINAL_PROJECTIONS.set(outer);
        }
    }

    /**
     * Sets what receives the probabilities [B, heads, queries, keys] of every cross-attention pass on this thread
     * (slower: no fused kernel), null for nothing; returns what it replaces. Used to read cross-attention maps of a word.
     */
    public static java.util.function.Consumer<Tensor> observeCrossAttention(java.util.function.Consumer<Tensor> observer) {
        java.util.function.Consumer<Tensor> before = CROSS_ATTENTION_OBSERVER.get();
        CROSS_ATTENTION_OBSERVER.set(observer);
        return before;
    }

    /** The original, unedited K and V layers. */
    public Linear originalKey() { return toK; }

    public Linear originalValue() { return toV; }

    /** Width of the encodings K and V read (the text encoder's width for cross-attention). */
    public long contextDim() { return contextDim; }

    /** Output width of K and V (heads x head size). */
    public long innerDim() { return toK.out; }
}
