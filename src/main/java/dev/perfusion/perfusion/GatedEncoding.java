package dev.perfusion.perfusion;

import org.bytedeco.pytorch.Tensor;

/**
 * The layer-independent part of Perfusion's edit for one prompt batch, shared by every edited K/V projection.
 *
 * @param encodings the text encodings E [B, T, D] it was computed from
 * @param s         s_{n,j} [B, T, N]: C^-1-projection coefficient of token n on concept j (1 at e = i*_j)
 * @param gate      g_{n,j} [B, T, N]: sigmoid((s_{n,j} - beta_j) / tau_j)
 * @param eOrth     e_n⊥ [B, T, D]: the encodings with the concepts' directions removed in the C^-1 metric
 */
public record GatedEncoding(Tensor encodings, Tensor s, Tensor gate, Tensor eOrth) {
    GatedEncoding shared() {
        return new GatedEncoding(new Tensor(encodings), new Tensor(s), new Tensor(gate), new Tensor(eOrth));
    }
}
