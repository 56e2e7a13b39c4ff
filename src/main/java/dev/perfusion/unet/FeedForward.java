package dev.perfusion.unet;

import dev.perfusion.nn.Linear;
import dev.perfusion.nn.Module;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

import java.util.List;

/** GEGLU feed-forward: project to 2 x inner, value * gelu(gate), back to dim (diffusers' net.0.proj, net.2). */
final class FeedForward extends Module {
    private final Geglu geglu;
    private final Linear out;

    FeedForward(long dim) {
        long inner = 4 * dim;
        this.geglu = new Geglu(dim, inner);
        this.out = new Linear(inner, dim, true);
        children("net", List.of(geglu, new Dropout(), out));
    }

    Tensor forward(Tensor x) {
        Tensor[] valueAndGate = Ops.chunk(geglu.proj.forward(x), 2, -1);
        return out.forward(Ops.mul(valueAndGate[0], Ops.gelu(valueAndGate[1])));
    }

    private static final class Geglu extends Module {
        final Linear proj;

        Geglu(long dim, long inner) {
            this.proj = child("proj", new Linear(dim, 2 * inner, true));
        }
    }

    /** net.1 is a dropout (no weights, identity at inference); kept so net.2 has diffusers' index. */
    private static final class Dropout extends Module {}
}
