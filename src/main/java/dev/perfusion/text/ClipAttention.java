package dev.perfusion.text;

import dev.perfusion.nn.Linear;
import dev.perfusion.nn.Module;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

/** CLIPAttention: multi-head self-attention over the prompt's tokens, masked so a token sees only its left. */
public final class ClipAttention extends Module {
    public final Linear kProj;
    public final Linear vProj;
    public final Linear qProj;
    public final Linear outProj;
    private final int heads;
    private final int headDim;

    ClipAttention(ClipTextConfig config) {
        int dim = config.hiddenSize();
        this.kProj = child("k_proj", new Linear(dim, dim, true));
        this.vProj = child("v_proj", new Linear(dim, dim, true));
        this.qProj = child("q_proj", new Linear(dim, dim, true));
        this.outProj = child("out_proj", new Linear(dim, dim, true));
        this.heads = config.numAttentionHeads();
        this.headDim = config.headDim();
    }

    /** @param causalMask additive [L, L] mask, see {@link ClipTextTransformer#causalMask} */
    public Tensor forward(Tensor hidden, Tensor causalMask) {
        long[] s = Ops.shape(hidden);
        Tensor q = splitHeads(qProj.forward(hidden), s[0], s[1]);
        Tensor k = splitHeads(kProj.forward(hidden), s[0], s[1]);
        Tensor v = splitHeads(vProj.forward(hidden), s[0], s[1]);
        Tensor attended = Ops.attention(q, k, v, causalMask, 1.0 / Math.sqrt(headDim));
        Tensor merged = Ops.reshape(Ops.transpose(attended, 1, 2), s[0], s[1], s[2]);
        return outProj.forward(merged);
    }

    /** [B, L, heads*headDim] -> [B, heads, L, headDim] */
    private Tensor splitHeads(Tensor x, long batch, long tokens) {
        return Ops.transpose(Ops.reshape(x, batch, tokens, heads, headDim), 1, 2);
    }
}
