package dev.perfusion.io;

import org.bytedeco.pytorch.Tensor;

import java.util.Set;

/** Named tensors from a checkpoint, possibly renamed from another layout. */
public interface StateDict {
    Set<String> keys();

    /** The tensor as float32 on the CPU. */
    Tensor get(String name);

    long[] shape(String name);

    /** Where a tensor comes from, for error messages: file and stored name. */
    String describe(String name);

    default boolean has(String name) { return keys().contains(name); }
}
