package dev.perfusion.text;

import dev.perfusion.nn.Linear;
import dev.perfusion.nn.Module;
import org.bytedeco.pytorch.Tensor;

/** CLIPMLP: hidden -> intermediate -> activation -> hidden. */
public final class ClipMlp extends Module {
    public final Linear fc1;
    public final Linear fc2;
    private final ClipActivation activation;

    ClipMlp(ClipTextConfig config) {
        this.fc1 = child("fc1", new Linear(config.hiddenSize(), config.intermediateSize(), true));
        this.fc2 = child("fc2", new Linear(config.intermediateSize(), config.hiddenSize(), true));
        this.activation = config.activation();
    }

    public Tensor forward(Tensor x) {
        return fc2.forward(activation.apply(fc1.forward(x)));
    }
}
