package dev.perfusion.sampling;

import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;

import java.util.List;

/**
 * DPM-Solver++ 2M (Lu et al.), multistep second order with the midpoint rule, as diffusers'
 * DPMSolverMultistepScheduler with algorithm_type dpmsolver++; the final step is first order.
 */
public final class DpmSolverMultistepScheduler implements Scheduler {
    private final NoiseSchedule schedule;
    private final String spacing;
    private final int stepsOffset;
    private final boolean karras;
    private final boolean vPrediction;
    private long[] timesteps = new long[0];
    private double[] sigmas = new double[0];
    private Tensor previousX0;
    private int lowerOrderCount;

    public DpmSolverMultistepScheduler(SchedulerConfig c) {
        this.schedule = new NoiseSchedule(c);
        this.spacing = c.timestepSpacing(SchedulerConfig.ClassDefaults.DPM_SOLVER);
        this.stepsOffset = c.stepsOffset();
        this.karras = c.useKarrasSigmas();
        this.vPrediction = c.vPrediction();
        String algorithm = c.algorithmType();
        // diffusers reads "deis" as dpmsolver++ and the UniPC solver types as midpoint
        if (!algorithm.equals("dpmsolver++") && !algorithm.equals("deis")) throw new IllegalArgumentException("unsupported algorithm_type '" + algorithm + "' (dpmsolver++)");
        if (!List.of("logrho", "bh1", "bh2").contains(c.json().path("solver_type").asText())) c.requireDefault("dpmpp-2m", "solver_type", "midpoint");
        c.requireDefault("dpmpp-2m", "solver_order", 2);
        c.requireDefault("dpmpp-2m", "final_sigmas_type", "zero");
        c.requireDefault("dpmpp-2m", "use_lu_lambdas", false);
        c.requireDefault("dpmpp-2m", "lambda_min_clipped", Double.NEGATIVE_INFINITY);
        // only a learned variance changes the update; DDPM's configs say "fixed_small"
        String variance = c.json().path("variance_type").asText("");
        if (variance.startsWith("learned")) c.requireDefault("dpmpp-2m", "variance_type", null);
        c.requireDefault("dpmpp-2m", "euler_at_final", false);
        c.requireDefault("dpmpp-2m", "use_exponential_sigmas", false);
        c.requireDefault("dpmpp-2m", "use_beta_sigmas", false);
    }

    @Override
    public void setTimesteps(int steps) {
        int n = schedule.trainSteps();
        Spacing.checkSteps(steps, n);
        long[] ts = new long[steps];
        switch (spacing) {
            case "linspace" -> {
                double[] lin = Spacing.linspace(0, n - 1, steps + 1);
                for (int i = 0; i < steps; i++) ts[i] = (long) Math.rint(lin[steps - i]);
            }
            case "leading" -> {
                int ratio = n / (steps + 1);
                for (int i = 0; i < steps; i++) ts[i] = (long) (steps - i) * ratio + stepsOffset;
                Spacing.checkInSchedule(ts[0], n, steps, stepsOffset);
            }
            case "trailing" -> ts = Spacing.discrete("trailing", n, steps, 0);
            default -> throw new IllegalArgumentException("unsupported timestep_spacing '" + spacing + "'");
        }
        float[] trainSigmas = Spacing.trainingSigmas(schedule);
        double[] sig = new double[steps + 1];
        if (karras) {
            double[] k = Spacing.karras(trainSigmas[0], trainSigmas[trainSigmas.length - 1], steps);
            for (int i = 0; i < steps; i++) {
                sig[i] = (float) k[i];
                ts[i] = Math.round(Math.rint(Spacing.sigmaToT(k[i], trainSigmas)));
            }
        } else {
            for (int i = 0; i < steps; i++) sig[i] = (float) Spacing.interp(ts[i], trainSigmas);
        }
        sig[steps] = 0; // final_sigmas_type "zero"
        this.timesteps = ts;
        this.sigmas = sig;
        this.previousX0 = null;
        this.lowerOrderCount = 0;
    }

    @Override
    public double[] timesteps() { return Spacing.toDoubles(timesteps); }

    private static double alpha(double sigma) { return 1 / Math.sqrt(sigma * sigma + 1); }

    private static double lambda(double sigma) { return Math.log(alpha(sigma)) - Math.log(sigma * alpha(sigma)); }

    @Override
    public Tensor step(Tensor modelOutput, int i, Tensor sample, NoiseSource noise) {
        double sigmaS = sigmas[i], sigmaT = sigmas[i + 1];
        double alphaS = alpha(sigmaS), alphaT = alpha(sigmaT);
        Tensor x0 = vPrediction
                ? Ops.sub(Ops.mul(sample, alphaS), Ops.mul(modelOutput, sigmaS * alphaS))
                : Ops.div(Ops.sub(sample, Ops.mul(modelOutput, sigmaS * alphaS)), alphaS);
        // final_sigmas_type "zero": the last step (to sigma 0) is always first order
        boolean last = i == timesteps.length - 1;
        double h = lambda(sigmaT) - lambda(sigmaS);
        double expm = Math.exp(-h) - 1;
        double ratio = sigmaT * alphaT / (sigmaS * alphaS);
        Tensor prev;
        if (previousX0 == null || lowerOrderCount < 1 || last) {
            // first order: x_t = (σ_t/σ_s) x - α_t (e^-h - 1) x0
            prev = Ops.sub(Ops.mul(sample, sigmaT == 0 ? 0 : ratio), Ops.mul(x0, alphaT * expm));
        } else {
            double sigmaPrev = sigmas[i - 1];
            double r0 = (lambda(sigmaS) - lambda(sigmaPrev)) / h;
            Tensor d1 = Ops.div(Ops.sub(x0, previousX0), r0);
            prev = Ops.sub(Ops.sub(Ops.mul(sample, ratio), Ops.mul(x0, alphaT * expm)), Ops.mul(d1, 0.5 * alphaT * expm));
        }
        previousX0 = Scope.keep(x0);
        if (lowerOrderCount < 2) lowerOrderCount++;
        return prev;
    }
}
