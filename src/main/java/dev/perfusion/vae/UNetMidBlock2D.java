package dev.perfusion.vae;

import dev.perfusion.tensor.Scope;
import dev.perfusion.nn.Module;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;

/** diffusers' UNetMidBlock2D without time embedding: resnet, then (attention, resnet) once. */
final class UNetMidBlock2D extends Module {
    private final List<ResnetBlock2D> resnets;
    private final List<VaeAttention> attentions;

    UNetMidBlock2D(int channels, int groups, double eps, boolean addAttention) {
        List<ResnetBlock2D> r = new ArrayList<>();
        r.add(new ResnetBlock2D(channels, channels, groups, eps));
        r.add(new ResnetBlock2D(channels, channels, groups, eps));
        this.attentions = addAttention
                ? children("attentions", List.of(new VaeAttention(channels, groups, eps)))
                : List.of();
        this.resnets = children("resnets", r);
    }

    Tensor forward(Tensor x) {
        Tensor h = Scope.within(() -> resnets.get(0).forward(x));
        for (int i = 1; i < resnets.size(); i++) {
            int index = i;
            if (!attentions.isEmpty()) {
                Tensor in = h;
                h = Scope.within(() -> attentions.get(index - 1).forward(in));
            }
            Tensor in = h;
            h = Scope.within(() -> resnets.get(index).forward(in));
        }
        return h;
    }
}
