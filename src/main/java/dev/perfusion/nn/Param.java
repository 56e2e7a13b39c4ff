package dev.perfusion.nn;

import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;

import java.util.Arrays;

/** One named weight of a module: its expected shape, and its value once loaded or initialised. */
public final class Param {
    private final long[] shape;
    private String path = "?";
    private Tensor value;

    Param(long[] shape) {
        this.shape = shape.clone();
    }

    /** The tensor; fails with the parameter's name when the model was built but never loaded. */
    public Tensor t() {
        if (value == null) throw new IllegalStateException("parameter " + path + " was never loaded or initialised");
        return value;
    }

    public boolean isSet() { return value != null; }

    public long[] shape() { return shape.clone(); }

    public String path() { return path; }

    void setPath(String path) { this.path = path; }

    /** Replaces the value, checking the shape; the tensor is kept beyond any open scope. */
    public void set(Tensor t) {
        long[] actual = Ops.shape(t);
        if (!Arrays.equals(actual, shape)) {
            throw new IllegalArgumentException("parameter " + path + ": expected shape " + Arrays.toString(shape)
                    + ", got " + Arrays.toString(actual));
        }
        value = Scope.keep(t);
    }
}
