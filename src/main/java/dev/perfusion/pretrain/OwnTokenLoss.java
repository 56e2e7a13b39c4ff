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
 * position to be about its own word. EOS stays free to summarise the caption, as CLIP's pooling needs; the padding
 * may be asked to name its own token too ({@link #padding}).
 */
final class OwnTokenLoss {
    private OwnTokenLoss() {}

    /** Each position's log-probability of its own token under logits hidden · Eᵀ: [B, L] from ids [B, L], hidden [B, L, D], E [V, D]. */
    static Tensor ownLogProbability(Tensor ids, Tensor hidden, Tensor tokenEmbedding) {
        Tensor logits = Ops.matmul(hidden, tokenEmbedding.t());                               // [B, L, V]
        return torch.log_softmax(logits, -1).gather(2, ids.unsqueeze(2)).squeeze(2);
    }

    /**
     * Cross-entropy summed over the positions before each row's first EOS (BOS and the words), over their count; the
     * positions of the {@code weighted} tokens count {@code weight} times (0: free).
     */
    static Tensor words(Tensor ownLogProbability, Tensor ids, long eosId, double weight, long... weighted) {
        Tensor beforeEos = eosThrough(ids, eosId).eq(new Scalar(0L)).to(torch.ScalarType.Float);
        Tensor positionWeight = beforeEos;
        for (long token : weighted) {
            Tensor isToken = ids.eq(new Scalar(token)).to(torch.ScalarType.Float);
            positionWeight = Ops.sub(positionWeight, Ops.mul(Ops.mul(beforeEos, isToken), 1 - weight));
        }
        return Ops.div(Ops.mul(ownLogProbability, positionWeight).sum().neg(), beforeEos.sum());
    }

    /**
     * Mean cross-entropy over the padding, the positions after each row's first EOS: with it, padding names its own
     * token instead of summarising the caption. The UNet reads padding everywhere in the picture (a quarter of the
     * cross-attention of the world model trained without this), so a concept whose i* the summary carries would reach
     * every pixel.
     */
    static Tensor padding(Tensor ownLogProbability, Tensor ids, long eosId) {
        Tensor eosBefore = Ops.sub(eosThrough(ids, eosId), ids.eq(new Scalar(eosId)).to(torch.ScalarType.Long));
        Tensor afterEos = eosBefore.gt(new Scalar(0L)).to(torch.ScalarType.Float);
        return Ops.div(Ops.mul(ownLogProbability, afterEos).sum().neg(), afterEos.sum().clamp_min(new Scalar(1.0)));
    }

    /** How many EOS tokens each position has seen, itself included: [B, L]. */
    private static Tensor eosThrough(Tensor ids, long eosId) {
        return ids.eq(new Scalar(eosId)).to(torch.ScalarType.Long).cumsum(1);
    }
}
