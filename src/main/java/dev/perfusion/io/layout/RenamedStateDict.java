package dev.perfusion.io.layout;

import dev.perfusion.io.StateDict;
import org.bytedeco.pytorch.Tensor;

import java.util.Arrays;
import java.util.Collections;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Tensors of another checkpoint under diffusers/transformers names. Each name is one entry of a rename table
 * pointing at one stored tensor, read as stored, as a linear weight (a 1x1 convolution kernel), or as a block of
 * rows (one of q/k/v in a fused projection). Nothing is read until {@link #get} is called.
 */
public final class RenamedStateDict implements StateDict {

    /** How the stored tensor becomes the named one. */
    public sealed interface Transform permits AsStored, ConvKernelAsLinear, Rows {}

    /** The stored tensor itself. */
    public record AsStored() implements Transform {}

    /** A [out, in, 1, 1] convolution kernel used as the [out, in] weight of a linear layer. */
    public record ConvKernelAsLinear() implements Transform {}

    /** Rows {@code start .. start+count-1} along dimension 0 (one projection of a fused q/k/v weight or bias). */
    public record Rows(long start, long count) implements Transform {}

    public static final Transform AS_STORED = new AsStored();
    public static final Transform CONV_KERNEL_AS_LINEAR = new ConvKernelAsLinear();

    /** Where a named tensor comes from: a key of the underlying state dict and a transform. */
    public record Source(String key, Transform transform) {}

    private final StateDict stored;
    private final Map<String, Source> table;

    /** {@code table}: target name → source in {@code stored}; kept sorted by target name. */
    public RenamedStateDict(StateDict stored, Map<String, Source> table) {
        this.stored = stored;
        this.table = Collections.unmodifiableMap(new TreeMap<>(table));
    }

    /** The rename table (target name → stored key and transform), sorted by target name. */
    public Map<String, Source> table() { return table; }

    /** The state dict the tensors are read from. */
    public StateDict stored() { return stored; }

    @Override
    public Set<String> keys() { return table.keySet(); }

    private Source source(String name) {
        Source s = table.get(name);
        if (s == null) throw new IllegalArgumentException("no tensor named '" + name + "' in this view of " + origin());
        return s;
    }

    private String origin() {
        return table.isEmpty() ? "an empty checkpoint" : stored.describe(table.values().iterator().next().key());
    }

    @Override
    public long[] shape(String name) {
        Source s = source(name);
        long[] shape = stored.shape(s.key());
        if (s.transform() instanceof ConvKernelAsLinear) {
            checkConvKernel(name, s, shape);
            return new long[] {shape[0], shape[1]};
        }
        if (s.transform() instanceof Rows r) {
            checkRows(name, s, r, shape);
            long[] out = shape.clone();
            out[0] = r.count();
            return out;
        }
        return shape;
    }

    @Override
    public Tensor get(String name) {
        Source s = source(name);
        long[] shape = stored.shape(s.key());
        Tensor t = stored.get(s.key());
        if (s.transform() instanceof ConvKernelAsLinear) {
            checkConvKernel(name, s, shape);
            return t.reshape(shape[0], shape[1]);
        }
        if (s.transform() instanceof Rows r) {
            checkRows(name, s, r, shape);
            // clone: the slice must own its memory, not keep the whole fused tensor alive
            return t.narrow(0, r.start(), r.count()).clone();
        }
        return t;
    }

    @Override
    public String dtype(String name) { return stored.dtype(source(name).key()); }

    @Override
    public String describe(String name) {
        Source s = source(name);
        String where = stored.describe(s.key());
        if (s.transform() instanceof ConvKernelAsLinear) {
            return where + " (1x1 convolution kernel read as linear weight '" + name + "')";
        }
        if (s.transform() instanceof Rows r) {
            return where + " (rows " + r.start() + ".." + (r.start() + r.count() - 1) + " as '" + name + "')";
        }
        return where + " (as '" + name + "')";
    }

    private void checkConvKernel(String name, Source s, long[] shape) {
        if (shape.length != 4 || shape[2] != 1 || shape[3] != 1) {
            throw new IllegalArgumentException(stored.describe(s.key()) + " has shape " + Arrays.toString(shape)
                    + ", expected a [out, in, 1, 1] kernel to read as '" + name + "'");
        }
    }

    private void checkRows(String name, Source s, Rows r, long[] shape) {
        if (shape.length == 0 || r.start() + r.count() > shape[0]) {
            throw new IllegalArgumentException(stored.describe(s.key()) + " has shape " + Arrays.toString(shape)
                    + ": too few rows to take rows " + r.start() + ".." + (r.start() + r.count() - 1) + " as '" + name + "'");
        }
    }
}
