package dev.perfusion.unet;

import dev.perfusion.nn.Module;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;

import java.util.List;

/** resnet, transformer, resnet at the lowest resolution. */
final class UNetMidBlock2DCrossAttn extends Module {
    final List<ResnetBlock2D> resnets;
    final List<Transformer2DModel> attentions;

    UNetMidBlock2DCrossAttn(UNetConfig c) {
        int last = c.levels() - 1;
        long ch = c.blockOutChannels().get(last);
        this.attentions = children("attentions", List.of(new Transformer2DModel(ch, c.headsPerBlock().get(last),
                c.transformerLayersPerBlock().get(last), c.crossAttentionDim(), c.normNumGroups(), c.useLinearProjection())));
        this.resnets = children("resnets", List.of(
                new ResnetBlock2D(ch, ch, c.timeEmbedDim(), c.normNumGroups(), c.normEps(), c.midBlockScaleFactor()),
                new ResnetBlock2D(ch, ch, c.timeEmbedDim(), c.normNumGroups(), c.normEps(), c.midBlockScaleFactor())));
    }

    Tensor forward(Tensor h, Tensor timeEmbedding, Tensor text) {
        Tensor first = Scope.within(() -> resnets.get(0).forward(h, timeEmbedding));
        Tensor attended = Scope.within(() -> attentions.get(0).forward(first, text));
        return Scope.within(() -> resnets.get(1).forward(attended, timeEmbedding));
    }
}
