package dev.perfusion.text;

import dev.perfusion.nn.LayerNorm;
import dev.perfusion.nn.Module;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

/** CLIPEncoderLayer: pre-norm residual attention, then pre-norm residual MLP. */
public final class ClipEncoderLayer extends Module {
    public final ClipAttention selfAttn;
    public final LayerNorm layerNorm1;
    public final ClipMlp mlp;
    public final LayerNorm layerNorm2;

    ClipEncoderLayer(ClipTextConfig config) {
        this.selfAttn = child("self_attn", new ClipAttention(config));
        this.layerNorm1 = child("layer_norm1", new LayerNorm(config.hiddenSize(), config.layerNormEps()));
        this.mlp = child("mlp", new ClipMlp(config));
        this.layerNorm2 = child("layer_norm2", new LayerNorm(config.hiddenSize(), config.layerNormEps()));
    }

    public Tensor forward(Tensor hidden, Tensor causalMask) {
        Tensor afterAttention = Ops.add(hidden, selfAttn.forward(layerNorm1.forward(hidden), causalMask));
        return Ops.add(afterAttention, mlp.forward(layerNorm2.forward(afterAttention)));
    }
}
