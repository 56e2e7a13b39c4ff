package dev.perfusion;

import dev.perfusion.tensor.CpuFeatures;

/** The CPU's class as kernels are chosen by it: results that differ between classes are recorded per class. */
public final class MachineClass {
    private MachineClass() {}

    /** amx, avx512-bf16 (bf16 dot products without AMX, Zen 4), avx512, avx2 or other. */
    public static String isa() {
        return CpuFeatures.isa();
    }

    /** The ISA and the OpenBLAS kernels the environment forces, if any. */
    public static String withOpenBlas() {
        String core = System.getenv("OPENBLAS_CORETYPE");
        return isa() + " / OpenBLAS " + (core == null || core.isBlank() ? "auto" : core);
    }
}
