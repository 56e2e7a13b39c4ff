package dev.perfusion.text;

import dev.perfusion.nn.Module;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;

/** CLIPEncoder: the stack of {@code num_hidden_layers} encoder layers. */
public final class ClipEncoder extends Module {
    public final List<ClipEncoderLayer> layers;

    ClipEncoder(ClipTextConfig config) {
        List<ClipEncoderLayer> list = new ArrayList<>();
        for (int i = 0; i < config.numHiddenLayers(); i++) list.add(new ClipEncoderLayer(config));
        this.layers = children("layers", list);
    }

    /** Runs the first {@code layerCount} layers (all of them unless clip skip stops early). */
    public Tensor forward(Tensor hidden, Tensor causalMask, int layerCount) {
        if (layerCount < 0 || layerCount > layers.size()) {
            throw new IllegalArgumentException("cannot run " + layerCount + " of " + layers.size() + " encoder layers");
        }
        Tensor h = hidden;
        for (int i = 0; i < layerCount; i++) h = layers.get(i).forward(h, causalMask);
        return h;
    }
}
