package dev.perfusion.sampling;

/** diffusers' timestep_spacing rules (leading, trailing, linspace), in numpy's arithmetic. */
final class Spacing {
    private Spacing() {}

    /** Integer timesteps, high to low. */
    static long[] discrete(String spacing, int trainSteps, int steps, int offset) {
        long[] out = new long[steps];
        switch (spacing) {
            case "leading" -> {
                int ratio = trainSteps / steps;
                for (int i = 0; i < steps; i++) out[i] = (long) (steps - 1 - i) * ratio + offset;
            }
            case "trailing" -> {
                double ratio = (double) trainSteps / steps;
                for (int i = 0; i < steps; i++) out[i] = Math.round(Math.rint(trainSteps - i * ratio)) - 1;
            }
            case "linspace" -> {
                double[] lin = linspace(0, trainSteps - 1, steps);
                for (int i = 0; i < steps; i++) out[i] = (long) Math.rint(lin[steps - 1 - i]);
            }
            default -> throw new IllegalArgumentException("unsupported timestep_spacing '" + spacing + "'");
        }
        for (long t : out) checkInSchedule(t, trainSteps, steps, offset);
        return out;
    }

    /** Refuses more sampling steps than training timesteps: some would repeat, and "trailing" spacing reaches -1. */
    static void checkSteps(int steps, int trainSteps) {
        if (steps > trainSteps) {
            throw new IllegalArgumentException(steps + " steps exceed the " + trainSteps + " training timesteps");
        }
    }

    /**
     * Refuses a timestep past the training schedule, which steps_offset gives with many steps ("leading" spacing
     * with offset 1 and as many steps as training timesteps): diffusers fails there with an index error.
     */
    static void checkInSchedule(double t, int trainSteps, int steps, int offset) {
        if (t > trainSteps - 1) {
            throw new IllegalArgumentException(steps + " steps with steps_offset " + offset + " put a timestep at "
                    + (long) t + ", past the last of the " + trainSteps + " training timesteps; use fewer steps");
        }
    }

    /** numpy.linspace in float64. */
    static double[] linspace(double start, double stop, int n) {
        double[] out = new double[n];
        if (n == 1) {
            out[0] = start;
            return out;
        }
        double step = (stop - start) / (n - 1);
        for (int i = 0; i < n; i++) out[i] = start + i * step;
        out[n - 1] = stop;
        return out;
    }

    static double[] toDoubles(long[] xs) {
        double[] d = new double[xs.length];
        for (int i = 0; i < xs.length; i++) d[i] = xs[i];
        return d;
    }

    /** numpy.interp over integer grid points 0..n-1. */
    static double interp(double x, float[] ys) {
        if (x <= 0) return ys[0];
        if (x >= ys.length - 1) return ys[ys.length - 1];
        int i = (int) Math.floor(x);
        double w = x - i;
        return ys[i] + (ys[i + 1] - (double) ys[i]) * w;
    }

    /** σ_i = sqrt((1 - ᾱ_i) / ᾱ_i), computed in float32 as diffusers does. */
    static float[] trainingSigmas(NoiseSchedule schedule) {
        float[] ac = schedule.alphasCumprod();
        float[] s = new float[ac.length];
        for (int i = 0; i < ac.length; i++) s[i] = (float) Math.sqrt((float) ((1f - ac[i]) / ac[i]));
        return s;
    }

    /** Karras et al.'s rho-7 spacing between the largest and smallest sigma. */
    static double[] karras(double sigmaMin, double sigmaMax, int steps) {
        double rho = 7.0, minInv = Math.pow(sigmaMin, 1 / rho), maxInv = Math.pow(sigmaMax, 1 / rho);
        double[] ramp = linspace(0, 1, steps), out = new double[steps];
        for (int i = 0; i < steps; i++) out[i] = Math.pow(maxInv + ramp[i] * (minInv - maxInv), rho);
        return out;
    }

    /** The (fractional) training timestep of a sigma, interpolating log-sigmas as diffusers' _sigma_to_t. */
    static double sigmaToT(double sigma, float[] sigmas) {
        double logSigma = Math.log(Math.max(sigma, 1e-10));
        int n = sigmas.length, low = 0;
        for (int i = 0; i < n; i++) if (logSigma - Math.log(sigmas[i]) >= 0) low = i;
        low = Math.min(low, n - 2);
        double lo = Math.log(sigmas[low]), hi = Math.log(sigmas[low + 1]);
        double w = Math.max(0, Math.min(1, (lo - logSigma) / (lo - hi)));
        return (1 - w) * low + w * (low + 1);
    }
}
