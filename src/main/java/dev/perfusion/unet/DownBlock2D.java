package dev.perfusion.unet;

import dev.perfusion.nn.Module;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;

/** One encoder level: resnets (each followed by a transformer in CrossAttnDownBlock2D), then a downsampler. */
final class DownBlock2D extends Module {
    final List<ResnetBlock2D> resnets;
    final List<Transformer2DModel> attentions;
    private final Sampling2D.Downsample2D downsampler;

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
                ? children("downsamplers", List.of(new Sampling2D.Downsample2D(out, c.downsamplePadding()))).get(0) : null;
    }

    /** Returns the new hidden state; appends this level's skip connections to {@code skips}. */
    Tensor forward(Tensor h, Tensor timeEmbedding, Tensor text, List<Tensor> skips) {
        for (int j = 0; j < resnets.size(); j++) {
            h = resnets.get(j).forward(h, timeEmbedding);
            if (!attentions.isEmpty()) h = attentions.get(j).forward(h, text);
            skips.add(h);
        }
        if (downsampler != null) {
            h = downsampler.forward(h);
            skips.add(h);
        }
        return h;
    }
}
