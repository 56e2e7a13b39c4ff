package dev.perfusion.tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** What the CPU computes natively, as libtorch's kernels (oneDNN, OpenBLAS) choose by it. */
public final class CpuFeatures {
    private CpuFeatures() {}

    private static final String ISA = isa(cpuinfo());

    /** amx (Sapphire Rapids and later), avx512-bf16 (bf16 dot products without AMX: Zen 4), avx512, avx2 or other. */
    public static String isa() {
        return ISA;
    }

    /** Whether bf16 convolutions and matmuls run on bf16 instructions here, not emulated (slower than fp32). */
    public static boolean nativeBf16() {
        return ISA.equals("amx") || ISA.equals("avx512-bf16");
    }

    /** The instruction-set class that {@code /proc/cpuinfo}'s lines name (its first {@code flags} line). */
    static String isa(List<String> cpuinfo) {
        String flags = " " + cpuinfo.stream().filter(l -> l.startsWith("flags")).findFirst().orElse("") + " ";
        return flags.contains(" amx_tile ") ? "amx" : flags.contains(" avx512_bf16 ") ? "avx512-bf16"
                : flags.contains(" avx512f ") ? "avx512" : flags.contains(" avx2 ") ? "avx2" : "other";
    }

    private static List<String> cpuinfo() {
        try {
            return Files.readAllLines(Path.of("/proc/cpuinfo"));
        } catch (IOException e) {
            return List.of(); // not Linux: no claim of native bf16
        }
    }
}
