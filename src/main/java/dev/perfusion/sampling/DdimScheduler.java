package dev.perfusion.sampling;

import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

/** DDIM (Song et al.), deterministic at eta 0, as diffusers' DDIMScheduler. */
public final class DdimScheduler implements Scheduler {
    private final NoiseSchedule schedule;
    private final String spacing;
    private final int stepsOffset;
    private final double finalAlphaCumprod;
    private final boolean clipSample;
    private final double clipRange;
    private final boolean vPrediction;
    private final double eta;
    private long[] timesteps = new long[0];
    private int stepRatio;

    public DdimScheduler(SchedulerConfig c, double eta) {
        this.schedule = new NoiseSchedule(c);
        this.spacing = c.timestepSpacing(SchedulerConfig.ClassDefaults.DDIM);
        this.stepsOffset = c.stepsOffset();
        this.finalAlphaCumprod = c.setAlphaToOne(SchedulerConfig.ClassDefaults.DDIM) ? 1.0 : schedule.alphaCumprod(0);
        this.clipSample = c.clipSample(SchedulerConfig.ClassDefaults.DDIM);
        this.clipRange = c.clipSampleRange();
        this.vPrediction = c.vPrediction();
        this.eta = eta;
    }

    @Override
    public void setTimesteps(int steps) {
        int n = schedule.trainSteps();
        Spacing.checkSteps(steps, n);
        stepRatio = n / steps;
        timesteps = Spacing.discrete(spacing, n, steps, stepsOffset);
    }

    @Override
    public double[] timesteps() { return Spacing.toDoubles(timesteps); }

    @Override
    public Tensor step(Tensor modelOutput, int stepIndex, Tensor sample, NoiseSource noise) {
        long t = timesteps[stepIndex];
        long prev = t - stepRatio;
        double alpha = schedule.alphaCumprod((int) t);
        double alphaPrev = prev >= 0 ? schedule.alphaCumprod((int) prev) : finalAlphaCumprod;
        double beta = 1 - alpha;
        Tensor x0, eps;
        if (vPrediction) {
            x0 = Ops.sub(Ops.mul(sample, Math.sqrt(alpha)), Ops.mul(modelOutput, Math.sqrt(beta)));
            eps = Ops.add(Ops.mul(modelOutput, Math.sqrt(alpha)), Ops.mul(sample, Math.sqrt(beta)));
        } else {
            x0 = Ops.div(Ops.sub(sample, Ops.mul(modelOutput, Math.sqrt(beta))), Math.sqrt(alpha));
            eps = modelOutput;
        }
        if (clipSample) x0 = Ops.clamp(x0, -clipRange, clipRange);
        double variance = (1 - alphaPrev) / (1 - alpha) * (1 - alpha / alphaPrev);
        double std = eta * Math.sqrt(variance);
        Tensor direction = Ops.mul(eps, Math.sqrt(1 - alphaPrev - std * std));
        Tensor prevSample = Ops.add(Ops.mul(x0, Math.sqrt(alphaPrev)), direction);
        if (eta > 0) prevSample = Ops.add(prevSample, Ops.mul(noise.randn(Ops.shape(sample)).to(sample.device(), sample.scalar_type()), std));
        return prevSample;
    }
}
