package dev.perfusion.text;

import dev.perfusion.nn.Linear;
import dev.perfusion.nn.Module;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * transformers' {@code CLIPTextModelWithProjection}: the CLIP text tower as contrastive training sees it. The
 * transformer ({@code text_model.*}, shared with {@link #textModel()}, so the two are one set of weights), then the
 * last hidden state at the first EOS token through the bias-free {@code text_projection}. Its file is a
 * {@code CLIPTextModel} file plus {@code text_projection.weight}, which {@link ClipTextModel#load} leaves aside.
 */
public final class ClipTextModelWithProjection extends Module {
    private final ClipTextConfig config;
    private final ClipTextModel textModel;
    private final Linear textProjection;

    private ClipTextModelWithProjection(ClipTextConfig config) {
        this.config = config;
        this.textModel = ClipTextModel.create(config);
        child("text_model", textModel.textModel());
        this.textProjection = child("text_projection", new Linear(config.hiddenSize(), config.projectionDim(), false));
        namedParameters();
    }

    public static ClipTextModelWithProjection create(ClipTextConfig config) {
        return new ClipTextModelWithProjection(config);
    }

    public ClipTextConfig config() { return config; }

    /** The same transformer as a {@code CLIPTextModel}: what the UNet reads, all token positions. */
    public ClipTextModel textModel() { return textModel; }

    /** text_embeds: [B, L] ids -> [B, projection_dim], the final hidden state at each row's first EOS, projected. */
    public Tensor textEmbeds(Tensor ids) {
        return textEmbeds(ids, textModel.encode(ids));
    }

    /** {@link #textEmbeds(Tensor)} of ids whose final hidden states [B, L, hidden] the caller already has. */
    public Tensor textEmbeds(Tensor ids, Tensor hidden) {
        Tensor eos = ids.eq(new Scalar(config.eosTokenId())).to(torch.ScalarType.Float).argmax(new org.bytedeco.pytorch.LongOptional(1), false);
        long b = Ops.shape(hidden)[0], d = Ops.shape(hidden)[2];
        Tensor at = eos.reshape(b, 1, 1).expand(b, 1, d);                    // the first EOS of each row
        Tensor pooled = hidden.gather(1, at).reshape(b, d);                  // [B, hidden]
        return textProjection.forward(pooled);
    }
}
