package dev.perfusion.sampling;

import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

/**
 * Euler in sigma space (Karras et al.), as diffusers' EulerDiscreteScheduler, or its ancestral variant
 * (EulerAncestralDiscreteScheduler) that re-injects noise at every step.
 */
public final class EulerScheduler implements Scheduler {
    private final NoiseSchedule schedule;
    private final boolean ancestral;
    private final String spacing;
    private final int stepsOffset;
    private final boolean karras;
    private final boolean vPrediction;
    private double[] timesteps = new double[0];
    private double[] sigmas = new double[0];

    public EulerScheduler(SchedulerConfig c, boolean ancestral) {
        this.schedule = new NoiseSchedule(c);
        this.ancestral = ancestral;
        this.spacing = c.timestepSpacing(SchedulerConfig.ClassDefaults.EULER);
        this.stepsOffset = c.stepsOffset();
        this.karras = !ancestral && c.useKarrasSigmas();
        this.vPrediction = c.vPrediction();
        if (!ancestral) { // diffusers' ancestral Euler reads none of these
            c.requireDefault("euler", "interpolation_type", "linear");
            c.requireDefault("euler", "timestep_type", "discrete");
            c.requireDefault("euler", "sigma_min", null);
            c.requireDefault("euler", "sigma_max", null);
            c.requireDefault("euler", "use_exponential_sigmas", false);
            c.requireDefault("euler", "use_beta_sigmas", false);
            c.requireDefault("euler", "final_sigmas_type", "zero");
        }
    }

    @Override
    public void setTimesteps(int steps) {
        int n = schedule.trainSteps();
        Spacing.checkSteps(steps, n);
        double[] ts = new double[steps];
        switch (spacing) {
            case "linspace" -> {
                double[] lin = Spacing.linspace(0, n - 1, steps);
                for (int i = 0; i < steps; i++) ts[i] = (float) lin[steps - 1 - i];
            }
            case "leading" -> {
                int ratio = n / steps;
                for (int i = 0; i < steps; i++) ts[i] = (float) ((steps - 1 - i) * ratio + stepsOffset);
                Spacing.checkInSchedule(ts[0], n, steps, stepsOffset);
            }
            case "trailing" -> {
                double ratio = (double) n / steps;
                for (int i = 0; i < steps; i++) ts[i] = (float) (Math.rint(n - i * ratio) - 1);
            }
            default -> throw new IllegalArgumentException("unsupported timestep_spacing '" + spacing + "'");
        }
        float[] trainSigmas = Spacing.trainingSigmas(schedule);
        double[] sig = new double[steps + 1];
        if (karras) {
            double[] interpolated = new double[steps];
            for (int i = 0; i < steps; i++) interpolated[i] = Spacing.interp(ts[i], trainSigmas);
            double[] k = Spacing.karras(interpolated[steps - 1], interpolated[0], steps);
            for (int i = 0; i < steps; i++) {
                sig[i] = (float) k[i];
                ts[i] = (float) Spacing.sigmaToT(k[i], trainSigmas);
            }
        } else {
            for (int i = 0; i < steps; i++) sig[i] = (float) Spacing.interp(ts[i], trainSigmas);
        }
        sig[steps] = 0;
        this.timesteps = ts;
        this.sigmas = sig;
    }

    @Override
    public double[] timesteps() { return timesteps.clone(); }

    public double[] sigmas() { return sigmas.clone(); }

    @Override
    public double initNoiseSigma() {
        double max = 0;
        for (double s : sigmas) max = Math.max(max, s);
        return spacing.equals("linspace") || spacing.equals("trailing") ? max : Math.sqrt(max * max + 1);
    }

    @Override
    public Tensor scaleModelInput(Tensor sample, int stepIndex) {
        double sigma = sigmas[stepIndex];
        return Ops.div(sample, Math.sqrt(sigma * sigma + 1));
    }

    @Override
    public Tensor step(Tensor modelOutput, int stepIndex, Tensor sample, NoiseSource noise) {
        double sigma = sigmas[stepIndex], next = sigmas[stepIndex + 1];
        Tensor x0 = vPrediction
                ? Ops.add(Ops.mul(modelOutput, -sigma / Math.sqrt(sigma * sigma + 1)), Ops.div(sample, sigma * sigma + 1))
                : Ops.sub(sample, Ops.mul(modelOutput, sigma));
        Tensor derivative = Ops.div(Ops.sub(sample, x0), sigma);
        if (!ancestral) return Ops.add(sample, Ops.mul(derivative, next - sigma));
        double up = Math.sqrt(next * next * (sigma * sigma - next * next) / (sigma * sigma));
        double down = Math.sqrt(next * next - up * up);
        Tensor prev = Ops.add(sample, Ops.mul(derivative, down - sigma));
        if (up == 0) return prev;
        return Ops.add(prev, Ops.mul(noise.randn(Ops.shape(sample)).to(sample.device(), sample.scalar_type()), up));
    }
}
