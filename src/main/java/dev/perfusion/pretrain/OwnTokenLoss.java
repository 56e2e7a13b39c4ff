package dev.perfusion.pretrain;

import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * A per-token objective beside CLIP's contrastive loss: each position before the first EOS (BOS and the words) must
 * tell its own token from every other in the vocabulary, read through the tied token embeddings
 * (logits = hidden · Eᵀ, cross-entropy with the position's own id). The contrastive loss reads the EOS position
 * alone, so nothing else shapes the other positions, and a causal tower lets them summarise the words before them:
 * the word after a concept word then carries the concept as much as the word itself (s near 1), which opens
 * Perfusion's gate there. Pushing down the logits of the other tokens, the words before included, asks each
 * position to be about its own word. EOS and padding stay free to summarise the caption, as CLIP's pooling needs.
 */
final class OwnTokenLoss {
    private OwnTokenLoss() {}

    /**
     * Mean cross-entropy over the positions before each row's first EOS, except those of the {@code free} tokens;
     * ids [B, L], hidden [B, L, D], embedding [V, D].
     */
    static Tensor forward(Tensor ids, Tensor hidden, Tensor tokenEmbedding, long eosId, long... free) {
        Tensor logits = Ops.matmul(hidden, tokenEmbedding.t());                               // [B, L, V]
        Tensor ownLogProbability = torch.log_softmax(logits, -1).gather(2, ids.unsqueeze(2)).squeeze(2);   // [B, L]
        Tensor beforeEos = ids.eq(new Scalar(eosId)).to(torch.ScalarType.Long).cumsum(1).eq(new Scalar(0L))
                .to(torch.ScalarType.Float);                                                    // 1 at BOS and the words
        for (long token : free) beforeEos = Ops.mul(beforeEos, ids.ne(new Scalar(token)).to(torch.ScalarType.Float));
        return Ops.div(Ops.mul(ownLogProbability, beforeEos).sum().neg(), beforeEos.sum());
    }
}
