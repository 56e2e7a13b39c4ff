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

    /** Each position's log-probabilities over the vocabulary under logits hidden · Eᵀ: [B, L, V] from hidden [B, L, D], E [V, D]. */
    static Tensor logProbabilities(Tensor hidden, Tensor tokenEmbedding) {
        return torch.log_softmax(Ops.matmul(hidden, tokenEmbedding.t()), -1);
    }

    /** Each position's log-probability of its own token: [B, L] from ids [B, L] and {@link #logProbabilities}. */
    static Tensor own(Tensor logProbabilities, Tensor ids) {
        return logProbabilities.gather(2, ids.unsqueeze(2)).squeeze(2);
    }

    /**
     * The colour-binding term: mean cross-entropy, over the positions that hold one of the {@code objects} tokens
     * right after one of the {@code colours} tokens ("blue mug"), of the colour's token at the object word's position
     * (0 where a batch has none). Beside the own-token objective the object word then names both, its own token
     * first, so its encoding says which colour it is: a UNet reads the encodings as a set, and a colour word that
     * stays about itself cannot tell it which object it colours.
     */
    static Tensor boundColour(Tensor logProbabilities, Tensor ids, long[] colours, long[] objects) {
        Tensor before = Ops.cat(1, ids.narrow(1, 0, 1), ids.narrow(1, 0, ids.size(1) - 1)); // each position's previous token
        Tensor bound = Ops.mul(isAny(before, colours), isAny(ids, objects));
        Tensor colourLogProbability = own(logProbabilities, before);
        return Ops.div(Ops.mul(colourLogProbability, bound).sum().neg(), bound.sum().clamp_min(new Scalar(1.0)));
    }

    /** 1 where {@code ids} holds one of {@code tokens}, else 0: float [B, L]. */
    private static Tensor isAny(Tensor ids, long[] tokens) {
        Tensor any = torch.zeros_like(ids).to(torch.ScalarType.Float);
        for (long token : tokens) any = Ops.add(any, ids.eq(new Scalar(token)).to(torch.ScalarType.Float));
        return any;
    }

    /**
     * Cross-entropy summed over the positions before each row's first EOS (BOS and the words), over their count; the
     * positions of the {@code weighted} tokens count {@code weight} times (0: free).
     */
    static Tensor words(Tensor ownLogProbability, Tensor ids, long eosId, double weight, long... weighted) {
        Tensor beforeEos = eosThrough(ids, eosId).eq(new Scalar(0L)).to(torch.ScalarType.Float);
        Tensor positionWeight = Ops.sub(beforeEos, Ops.mul(Ops.mul(beforeEos, isAny(ids, weighted)), 1 - weight));
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
