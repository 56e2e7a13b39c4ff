package dev.perfusion.tensor;

/** Counts the nominal FLOPs of the heavy ops (matmul-like work) while enabled; for benchmarks only. */
public final class FlopCounter {
    private static volatile boolean enabled;
    private static long flops;

    private FlopCounter() {}

    public static synchronized void start() {
        flops = 0;
        enabled = true;
    }

    public static synchronized long stop() {
        enabled = false;
        return flops;
    }

    static boolean enabled() { return enabled; }

    static synchronized void add(long n) { flops += n; }
}
