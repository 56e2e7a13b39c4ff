package dev.perfusion.util;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** This process's memory as the operating system counts it: the Java heap, libtorch's tensors and everything else. */
public final class ProcessMemory {
    private ProcessMemory() {}

    /** The peak resident set size (Linux's VmHWM) in GiB; NaN where the system does not report it. */
    public static double peakResidentGiB() {
        return statusGiB("VmHWM:");
    }

    /** The resident set size now (Linux's VmRSS) in GiB; NaN where the system does not report it. */
    public static double residentGiB() {
        return statusGiB("VmRSS:");
    }

    private static double statusGiB(String field) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith(field)) return Long.parseLong(line.replaceAll("\\D+", "")) / 1024.0 / 1024.0;
            }
        } catch (IOException | RuntimeException e) {
            // not Linux: report nothing rather than fail the caller
        }
        return Double.NaN;
    }
}
