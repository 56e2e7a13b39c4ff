package dev.perfusion.unet;

import dev.perfusion.nn.Downsample2D;
import dev.perfusion.nn.Module;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;

/** One encoder level: resnets (each followed by a transformer in CrossAttnDownBlock2D), then a downsampler. */
final class DownBlock2D extends Module {
    final List<ResnetBlock2D> resnets;
    final List<Transformer2DModel> attentions;
    private final Downsample2D downsampler;

    DownBlock2D(UNetConfig c, int level, long in, long out, boolean crossAttention, boolean downsample) {
        List<ResnetBlock2D> res = new ArrayList<>();
        List<Transformer2DModel> att = new ArrayList<>();
        for (int j = 0; j < c.layersPerBlock(); j++) {
            res.add(new ResnetBlock2D(j == 0 ? in : out, out, c.timeEmbedDim(), c.normNumGroups(), c.normEps(), 1.0));
            if (crossAttention) {
                att.add(new Transformer2DModel(out, c.headsPerBlock().get(level), c.transformerLayersPerBlock().get(level),
                        c.crossAttentionDim(), c.normNumGroups(), c.useLinearProjection()));
            }
        }
        this.attentions = crossAttention ? children("attentions", att) : List.of();
        this.resnets = children("resnets", res);
        this.downsampler = downsample
                ? children("downsamplers", List.of(new Downsample2D(out, c.downsamplePadding()))).get(0) : null;
    }

    /** Returns the new hidden state; appends this level's skip connections to {@code skips}. */
    Tensor forward(Tensor h, Tensor timeEmbedding, Tensor text, List<Tensor> skips) {
        for (int j = 0; j < resnets.size(); j++) {
            Tensor in = h;
            ResnetBlock2D resnet = resnets.get(j);
            h = Scope.within(() -> resnet.forward(in, timeEmbedding));
            if (!attentions.isEmpty()) {
                Tensor mid = h;
                Transformer2DModel attention = attentions.get(j);
                h = Scope.within(() -> attention.forward(mid, text));
            }
            skips.add(h);
        }
        if (downsampler != null) {
            Tensor in = h;
            h = Scope.within(() -> downsampler.forward(in));
            skips.add(h);
        }
        return h;
    }
}
