package dev.perfusion.unet;

import dev.perfusion.nn.Module;
import dev.perfusion.tensor.Scope;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * One decoder level: each resnet takes the hidden state concatenated with a skip from the encoder (the latest
 * first), followed by a transformer in CrossAttnUpBlock2D; then an upsampler to the next skip's size.
 */
final class UpBlock2D extends Module {
    final List<ResnetBlock2D> resnets;
    final List<Transformer2DModel> attentions;
    private final Sampling2D.Upsample2D upsampler;

    UpBlock2D(UNetConfig c, int upLevel, long in, long out, long prevOut, boolean crossAttention, boolean upsample) {
        int downLevel = c.levels() - 1 - upLevel;
        int layers = c.layersPerBlock() + 1;
        List<ResnetBlock2D> res = new ArrayList<>();
        List<Transformer2DModel> att = new ArrayList<>();
        for (int j = 0; j < layers; j++) {
            long skipChannels = j == layers - 1 ? in : out;
            long resnetIn = j == 0 ? prevOut : out;
            res.add(new ResnetBlock2D(resnetIn + skipChannels, out, c.timeEmbedDim(), c.normNumGroups(), c.normEps(), 1.0));
            if (crossAttention) {
                att.add(new Transformer2DModel(out, c.headsPerBlock().get(downLevel),
                        c.transformerLayersPerBlock().get(downLevel), c.crossAttentionDim(), c.normNumGroups(),
                        c.useLinearProjection()));
            }
        }
        this.attentions = crossAttention ? children("attentions", att) : List.of();
        this.resnets = children("resnets", res);
        this.upsampler = upsample ? children("upsamplers", List.of(new Sampling2D.Upsample2D(out))).get(0) : null;
    }

    /** Consumes this level's skips from the end of {@code skips}. */
    Tensor forward(Tensor h, Tensor timeEmbedding, Tensor text, List<Tensor> skips) {
        for (int j = 0; j < resnets.size(); j++) {
            Tensor skip = skips.remove(skips.size() - 1), in = h;
            ResnetBlock2D resnet = resnets.get(j);
            h = Scope.within(() -> resnet.forward(Ops.cat(1, in, skip), timeEmbedding));
            if (!attentions.isEmpty()) {
                Tensor mid = h;
                Transformer2DModel attention = attentions.get(j);
                h = Scope.within(() -> attention.forward(mid, text));
            }
        }
        if (upsampler != null) {
            long[] size = Sampling2D.spatial(skips.get(skips.size() - 1));
            Tensor in = h;
            h = Scope.within(() -> upsampler.forward(in, size[0], size[1]));
        }
        return h;
    }
}
