package dev.perfusion.io;

import org.bytedeco.pytorch.Tensor;

import java.util.Set;

/** Named tensors from a checkpoint, possibly renamed from another layout. */
public interface StateDict {
    Set<String> keys();

    /** The tensor as float32 on the CPU. */
    Tensor get(String name);

    long[] shape(String name);

    /** The dtype a tensor is stored in, as safetensors names it (F32, F16, BF16, I64, ...); "unknown" where a source cannot say. */
    default String dtype(String name) { return "unknown"; }

    /** Where a tensor comes from, for error messages: file and stored name. */
    String describe(String name);

    default boolean has(String name) { return keys().contains(name); }
}
