package dev.perfusion.util;

import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * Where a loop's time goes: wall-clock time split into named phases by {@link #lap}, each lap charging the time
 * since the previous one to its phase. libtorch runs CPU operations synchronously, so a lap after an operation holds
 * that operation's compute. The JVM's garbage-collection time over the same span is reported beside the phases.
 */
public final class Phases {
    private final Map<String, Long> nanos = new LinkedHashMap<>();
    private long last = System.nanoTime();
    private long gcStarted = gcMillis();

    /** Starts a new span: what happened since the last lap is not charged to any phase. */
    public void restart() {
        nanos.clear();
        last = System.nanoTime();
        gcStarted = gcMillis();
    }

    /** Skips the time since the last lap (work that is not part of what is measured). */
    public void skip() {
        last = System.nanoTime();
    }

    /** Charges the time since the last lap to {@code phase}. */
    public void lap(String phase) {
        long now = System.nanoTime();
        nanos.merge(phase, now - last, Long::sum);
        last = now;
    }

    /** Seconds charged to each phase, in the order first seen. */
    public Map<String, Double> seconds() {
        Map<String, Double> s = new LinkedHashMap<>();
        nanos.forEach((k, v) -> s.put(k, v / 1e9));
        return s;
    }

    /** Each phase's share of the charged time, per unit of {@code units} (steps), and the GC time of the span. */
    public String describe(int units, String unit) {
        long total = nanos.values().stream().mapToLong(Long::longValue).sum();
        StringBuilder b = new StringBuilder();
        nanos.forEach((k, v) -> b.append(String.format(Locale.ROOT, "%s %.1f ms (%.0f%%), ", k, v / 1e6 / units, 100.0 * v / Math.max(1, total))));
        b.append(String.format(Locale.ROOT, "garbage collection %.1f ms per %s", (gcMillis() - gcStarted) / (double) units, unit));
        return b.toString();
    }

    private static long gcMillis() {
        long sum = 0;
        for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) sum += Math.max(0, gc.getCollectionTime());
        return sum;
    }
}
