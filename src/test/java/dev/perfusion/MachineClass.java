package dev.perfusion;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The CPU's class as kernels are chosen by it: results that differ between classes are recorded per class. */
public final class MachineClass {
    private MachineClass() {}

    /** amx, avx512-bf16 (bf16 dot products without AMX, Zen 4), avx512, avx2 or other. */
    public static String isa() {
        String flags;
        try {
            flags = " " + Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("flags")).findFirst().orElse("") + " ";
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return flags.contains(" amx_tile ") ? "amx" : flags.contains(" avx512_bf16 ") ? "avx512-bf16"
                : flags.contains(" avx512f ") ? "avx512" : flags.contains(" avx2 ") ? "avx2" : "other";
    }

    /** The ISA and the OpenBLAS kernels the environment forces, if any. */
    public static String withOpenBlas() {
        String core = System.getenv("OPENBLAS_CORETYPE");
        return isa() + " / OpenBLAS " + (core == null || core.isBlank() ? "auto" : core);
    }
}
