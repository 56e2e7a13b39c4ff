package dev.perfusion.tensor;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * Wall-clock time of the forward calls of the heavy operations (convolutions, linear layers, attention, norms) while
 * enabled, per operation and shape class; for benchmarks only, like {@link FlopCounter}. Backward passes run inside
 * libtorch's autograd engine and are not seen here.
 */
public final class OpClock {
    private static volatile boolean enabled;
    private static final Map<String, long[]> totals = new LinkedHashMap<>();

    private OpClock() {}

    public static synchronized void start() {
        totals.clear();
        enabled = true;
    }

    /** Stops counting; returns nanoseconds and calls per operation since {@link #start}, the most expensive first. */
    public static synchronized Map<String, long[]> stop() {
        enabled = false;
        Map<String, long[]> sorted = new LinkedHashMap<>();
        totals.entrySet().stream().sorted((a, b) -> Long.compare(b.getValue()[0], a.getValue()[0]))
                .forEach(e -> sorted.put(e.getKey(), e.getValue().clone()));
        totals.clear();
        return sorted;
    }

    /** A one-line summary of {@link #stop}'s result per {@code units} runs. */
    public static String describe(Map<String, long[]> times, int units) {
        long total = times.values().stream().mapToLong(v -> v[0]).sum();
        StringBuilder b = new StringBuilder();
        times.forEach((k, v) -> b.append(String.format(Locale.ROOT, "%s %.1f ms / %d calls (%.0f%%), ", k, v[0] / 1e6 / units,
                v[1] / units, 100.0 * v[0] / Math.max(1, total))));
        return b.length() == 0 ? "" : b.substring(0, b.length() - 2);
    }

    static boolean enabled() { return enabled; }

    static long now() { return enabled ? System.nanoTime() : 0; }

    static synchronized void add(String op, long startedNanos) {
        if (!enabled) return;
        long[] t = totals.computeIfAbsent(op, k -> new long[2]);
        t[0] += System.nanoTime() - startedNanos;
        t[1]++;
    }
}
