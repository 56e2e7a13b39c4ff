package dev.perfusion.vae;

import dev.perfusion.tensor.Scope;
import dev.perfusion.nn.Downsample2D;
import dev.perfusion.nn.Module;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;

/** diffusers' DownEncoderBlock2D: resnets, then optionally a stride-2 Downsample2D. */
final class DownEncoderBlock2D extends Module {
    private final List<ResnetBlock2D> resnets;
    private final List<Downsample2D> downsamplers;

    DownEncoderBlock2D(int in, int out, int layers, int groups, double eps, boolean addDownsample) {
        List<ResnetBlock2D> r = new ArrayList<>();
        for (int i = 0; i < layers; i++) r.add(new ResnetBlock2D(i == 0 ? in : out, out, groups, eps));
        this.resnets = children("resnets", r);
        this.downsamplers = addDownsample ? children("downsamplers", List.of(new Downsample2D(out, 0))) : List.of();
    }

    Tensor forward(Tensor x) {
        Tensor h = x;
        for (ResnetBlock2D resnet : resnets) {
            Tensor in = h;
            h = Scope.within(() -> resnet.forward(in));
        }
        for (Downsample2D down : downsamplers) {
            Tensor in = h;
            h = Scope.within(() -> down.forward(in));
        }
        return h;
    }
}
