package dev.perfusion.vae;

import dev.perfusion.tensor.Scope;
import dev.perfusion.nn.Conv2d;
import dev.perfusion.nn.Module;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;

/** diffusers' UpDecoderBlock2D: resnets, then optionally nearest 2x upsampling followed by a 3x3 conv. */
final class UpDecoderBlock2D extends Module {
    private final List<ResnetBlock2D> resnets;
    private final List<Upsample2D> upsamplers;

    UpDecoderBlock2D(int in, int out, int layers, int groups, double eps, boolean addUpsample) {
        List<ResnetBlock2D> r = new ArrayList<>();
        for (int i = 0; i < layers; i++) r.add(new ResnetBlock2D(i == 0 ? in : out, out, groups, eps));
        this.resnets = children("resnets", r);
        this.upsamplers = addUpsample ? children("upsamplers", List.of(new Upsample2D(out))) : List.of();
    }

    Tensor forward(Tensor x) {
        Tensor h = x;
        for (ResnetBlock2D resnet : resnets) {
            Tensor in = h;
            h = Scope.within(() -> resnet.forward(in));
        }
        for (Upsample2D up : upsamplers) {
            Tensor in = h;
            h = Scope.within(() -> up.forward(in));
        }
        return h;
    }

    static final class Upsample2D extends Module {
        private final Conv2d conv;

        Upsample2D(int channels) {
            this.conv = child("conv", new Conv2d(channels, channels, 3, 1, 1));
        }

        Tensor forward(Tensor x) {
            return conv.forward(Ops.upsampleNearest2x(x));
        }
    }
}
