package dev.perfusion.text;

import dev.perfusion.nn.Embedding;
import dev.perfusion.nn.Module;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/** CLIPTextEmbeddings: a learned vector per token id plus a learned vector per position. */
public final class ClipEmbeddings extends Module {
    public final Embedding tokenEmbedding;
    public final Embedding positionEmbedding;
    private final int vocabSize;
    private final int maxPositions;

    ClipEmbeddings(ClipTextConfig config) {
        this.tokenEmbedding = child("token_embedding", new Embedding(config.vocabSize(), config.hiddenSize()));
        this.positionEmbedding = child("position_embedding",
                new Embedding(config.maxPositionEmbeddings(), config.hiddenSize()));
        this.vocabSize = config.vocabSize();
        this.maxPositions = config.maxPositionEmbeddings();
    }

    /** [B, L] integer ids -> [B, L, hidden] rows of the token table. */
    public Tensor tokens(Tensor ids) {
        checkIds(ids);
        return tokenEmbedding.forward(ids);
    }

    /**
     * Adds the embeddings of positions 0..L-1 (transformers' {@code position_ids} buffer is exactly that range, so
     * a slice of the table replaces the lookup).
     */
    public Tensor withPositions(Tensor tokenEmbeds) {
        if (tokenEmbeds.dim() != 3) {
            throw new IllegalArgumentException("token embeddings must be [batch, tokens, hidden], got "
                    + Ops.shapeString(tokenEmbeds));
        }
        long tokens = Ops.shape(tokenEmbeds)[1];
        if (tokens > maxPositions) {
            throw new IllegalArgumentException(tokens + " tokens exceed the text encoder's " + maxPositions
                    + " positions (max_position_embeddings)");
        }
        return Ops.add(tokenEmbeds, Ops.narrow(positionEmbedding.weight.t(), 0, 0, tokens));
    }

    private void checkIds(Tensor ids) {
        if (ids.dim() != 2) throw new IllegalArgumentException("token ids must be [batch, tokens], got " + Ops.shapeString(ids));
        torch.ScalarType type = ids.scalar_type().intern();
        if (type != torch.ScalarType.Long && type != torch.ScalarType.Int) {
            throw new IllegalArgumentException("token ids must be int64 or int32, got " + type);
        }
        if (ids.numel() == 0) return;
        long min = ids.min().item().toLong();
        long max = ids.max().item().toLong();
        if (min < 0 || max >= vocabSize) {
            throw new IllegalArgumentException("token ids must lie in [0, " + vocabSize + "), got values from " + min
                    + " to " + max);
        }
    }
}
