package dev.perfusion.nn;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A block of a network. Parameters and sub-blocks are registered under the names the reference
 * implementation uses, so {@link #namedParameters()} yields diffusers' dotted keys and loading is a lookup.
 */
public abstract class Module {
    private final Map<String, Param> params = new LinkedHashMap<>();
    private final Map<String, Module> children = new LinkedHashMap<>();
    private boolean channelsLast;

    protected final Param param(String name, long... shape) {
        Param p = new Param(shape);
        p.setPath(name);
        params.put(name, p);
        return p;
    }

    protected final <M extends Module> M child(String name, M module) {
        children.put(name, module);
        return module;
    }

    /** Registers a list of blocks as children {@code name.0}, {@code name.1}, ...; returns an unmodifiable copy. */
    protected final <M extends Module> List<M> children(String name, List<M> modules) {
        Sequence seq = new Sequence();
        for (int i = 0; i < modules.size(); i++) seq.child(Integer.toString(i), modules.get(i));
        child(name, seq);
        return Collections.unmodifiableList(new ArrayList<>(modules));
    }

    /** All parameters under their full dotted names, in registration order. */
    public final Map<String, Param> namedParameters() {
        Map<String, Param> out = new LinkedHashMap<>();
        collect("", out);
        return out;
    }

    private void collect(String prefix, Map<String, Param> out) {
        params.forEach((name, p) -> {
            p.setPath(prefix + name);
            out.put(prefix + name, p);
        });
        children.forEach((name, m) -> m.collect(prefix + name + ".", out));
    }

    /**
     * Stores every convolution weight (each 4-D parameter on the CPU) channels-last, in place. oneDNN then convolves
     * in its own layout without reordering the weight and the activations at every call, and each output stays
     * channels-last for the next convolution: a frozen VAE encodes 1.3-2x as fast (README, Benchmarks). For modules
     * that only infer: a training UNet was no faster this way. Beside another thread the layout does not hold: oneDNN's
     * channels-last kernels are not safe to build on two threads at once, so there convolutions compute in NCHW
     * (Ops.convolve), copying such weights at each call.
     */
    public final void storeConvolutionsChannelsLast() {
        for (Param p : namedParameters().values()) {
            Tensor t = p.t();
            if (t.dim() == 4 && t.is_cpu()) t.set_data(t.contiguous(torch.MemoryFormat.ChannelsLast));
        }
        channelsLast = true;
    }

    /** Whether {@link #storeConvolutionsChannelsLast} stored this module's convolutions channels-last. */
    protected final boolean storesChannelsLast() {
        return channelsLast;
    }

    public final long parameterCount() {
        long n = 0;
        for (Param p : namedParameters().values()) {
            long c = 1;
            for (long d : p.shape()) c *= d;
            n += c;
        }
        return n;
    }

    /** A plain container used for numbered child lists. */
    private static final class Sequence extends Module {}
}
