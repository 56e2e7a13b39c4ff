package dev.perfusion.bench;

import dev.perfusion.tensor.Scope;

import java.util.ArrayList;
import java.util.List;

/** Wall-clock timing of repeated work, each run in its own tensor scope. */
final class Timing {
    private Timing() {}

    /** Seconds of each of {@code n} runs of {@code work}. */
    static List<Double> timed(int n, Runnable work) {
        List<Double> times = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            try (Scope s = Scope.inference()) {
                long t0 = System.nanoTime();
                work.run();
                times.add(secondsSince(t0));
            }
        }
        return times;
    }

    static double median(List<Double> xs) {
        double[] v = xs.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
    }

    static double secondsSince(long t0) { return (System.nanoTime() - t0) / 1e9; }
}
