package dev.perfusion;

import dev.perfusion.tensor.CpuFeatures;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** The CPU's class as kernels are chosen by it: results that differ between classes are recorded per class. */
public final class MachineClass {
    private MachineClass() {}

    /** amx, avx512-bf16 (bf16 dot products without AMX, Zen 4), avx512, avx2 or other. */
    public static String isa() {
        return CpuFeatures.isa();
    }

    /**
     * The ISA, the CPU's family and model, and the OpenBLAS kernels the environment forces, if any: two VMs of one
     * ISA (a Zen 4 and a Zen 5) trained the tiny recipe to other bits, each the same run after run.
     */
    public static String withOpenBlas() {
        String core = System.getenv("OPENBLAS_CORETYPE");
        return isa() + ", " + familyAndModel(cpuinfo()) + " / OpenBLAS " + (core == null || core.isBlank() ? "auto" : core);
    }

    /** "family 26 model 2", from {@code /proc/cpuinfo}'s first processor; "family ? model ?" where it says neither. */
    static String familyAndModel(List<String> cpuinfo) {
        return "family " + field(cpuinfo, "cpu family") + " model " + field(cpuinfo, "model");
    }

    private static String field(List<String> cpuinfo, String name) {
        for (String line : cpuinfo) {
            int colon = line.indexOf(':');
            if (colon > 0 && line.substring(0, colon).trim().equals(name)) return line.substring(colon + 1).trim();
        }
        return "?";
    }

    private static List<String> cpuinfo() {
        try {
            return Files.readAllLines(Path.of("/proc/cpuinfo"));
        } catch (IOException e) {
            return List.of();
        }
    }
}
