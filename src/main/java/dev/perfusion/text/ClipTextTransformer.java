package dev.perfusion.text;

import dev.perfusion.nn.LayerNorm;
import dev.perfusion.nn.Module;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.List;

/** CLIPTextTransformer ({@code text_model}): embeddings, encoder, final layer norm. */
public final class ClipTextTransformer extends Module {
    public final ClipEmbeddings embeddings;
    public final ClipEncoder encoder;
    public final LayerNorm finalLayerNorm;

    ClipTextTransformer(ClipTextConfig config) {
        this.embeddings = child("embeddings", new ClipEmbeddings(config));
        this.encoder = child("encoder", new ClipEncoder(config));
        this.finalLayerNorm = child("final_layer_norm", new LayerNorm(config.hiddenSize(), config.layerNormEps()));
    }

    /** Token embeddings [B, L, hidden] -> final_layer_norm(output of layer N - skipLastLayers). */
    public Tensor forward(Tensor tokenEmbeds, int skipLastLayers) {
        int layerCount = encoder.layers.size() - skipLastLayers;
        if (skipLastLayers < 0 || layerCount < 0) {
            throw new IllegalArgumentException("skipLastLayers must be in [0, " + encoder.layers.size() + "], got "
                    + skipLastLayers);
        }
        Tensor hidden = embeddings.withPositions(tokenEmbeds);
        Tensor mask = causalMask(Ops.shape(hidden)[1], hidden.options());
        return finalLayerNorm.forward(encoder.forward(hidden, mask, layerCount));
    }

    /**
     * transformers' {@code output_hidden_states}: the embeddings' output, then each layer's output, none of them
     * normalised. Entry {@code -(k+1)} is what diffusers' {@code clip_skip=k} feeds to the final layer norm.
     */
    public List<Tensor> hiddenStates(Tensor tokenEmbeds) {
        Tensor hidden = embeddings.withPositions(tokenEmbeds);
        Tensor mask = causalMask(Ops.shape(hidden)[1], hidden.options());
        List<Tensor> states = new ArrayList<>();
        states.add(hidden);
        for (ClipEncoderLayer layer : encoder.layers) {
            hidden = layer.forward(hidden, mask);
            states.add(hidden);
        }
        return states;
    }

    /**
     * Additive [L, L] mask, -inf above the diagonal: CLIP was trained as a causal model, so token i attends to
     * tokens 0..i only. (transformers fills with finfo.min instead of -inf; after softmax both give exact zeros.)
     */
    public static Tensor causalMask(long tokens, TensorOptions options) {
        return torch.full(new long[] {tokens, tokens}, new Scalar(Double.NEGATIVE_INFINITY), options).triu(1);
    }
}
