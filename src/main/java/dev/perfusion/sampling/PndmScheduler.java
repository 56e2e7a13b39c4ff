package dev.perfusion.sampling;

import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * Pseudo numerical methods (Liu et al.), as diffusers' PNDMScheduler: Runge-Kutta warm-up steps unless
 * skip_prk_steps (what SD configs set), then linear multistep (PLMS) over the history of model outputs.
 */
public final class PndmScheduler implements Scheduler {
    private final NoiseSchedule schedule;
    private final String spacing;
    private final int stepsOffset;
    private final boolean skipPrk;
    private final double finalAlphaCumprod;
    private final boolean vPrediction;
    private long[] timesteps = new long[0];
    private int prkCount;
    private int stepRatio;
    private final List<Tensor> history = new ArrayList<>();
    private int counter;
    private Tensor currentSample;
    private Tensor rkSum;

    public PndmScheduler(SchedulerConfig c) {
        this.schedule = new NoiseSchedule(c);
        this.spacing = c.timestepSpacing(SchedulerConfig.ClassDefaults.PNDM);
        this.stepsOffset = c.stepsOffset();
        this.skipPrk = c.skipPrkSteps();
        this.finalAlphaCumprod = c.setAlphaToOne(SchedulerConfig.ClassDefaults.PNDM) ? 1.0 : schedule.alphaCumprod(0);
        this.vPrediction = c.vPrediction();
    }

    @Override
    public void setTimesteps(int steps) {
        int n = schedule.trainSteps();
        Spacing.checkSteps(steps, n);
        stepRatio = n / steps;
        long[] ascending = new long[steps];
        long[] descending = Spacing.discrete(spacing, n, steps, spacing.equals("leading") ? stepsOffset : 0);
        for (int i = 0; i < steps; i++) ascending[i] = descending[steps - 1 - i];
        List<Long> ts = new ArrayList<>();
        if (skipPrk) {
            // the second-to-last timestep twice: PLMS's first step needs a repeated evaluation
            List<Long> plms = new ArrayList<>();
            for (int i = 0; i < steps - 1; i++) plms.add(ascending[i]);
            if (steps >= 2) plms.add(ascending[steps - 2]);
            plms.add(ascending[steps - 1]);
            for (int i = plms.size() - 1; i >= 0; i--) ts.add(plms.get(i));
            prkCount = 0;
        } else {
            if (steps < 4) throw new IllegalArgumentException("PNDM with Runge-Kutta warm-up needs at least 4 steps");
            int order = 4;
            long[] prk = new long[2 * order];
            for (int k = 0; k < order; k++) {
                long base = ascending[steps - order + k];
                prk[2 * k] = base;
                prk[2 * k + 1] = base + stepRatio / 2;
            }
            // prk[:-1].repeat(2)[1:-1], reversed
            List<Long> repeated = new ArrayList<>();
            for (int k = 0; k < prk.length - 1; k++) { repeated.add(prk[k]); repeated.add(prk[k]); }
            List<Long> trimmed = repeated.subList(1, repeated.size() - 1);
            for (int k = trimmed.size() - 1; k >= 0; k--) ts.add(trimmed.get(k));
            prkCount = ts.size();
            for (int i = steps - 4; i >= 0; i--) ts.add(ascending[i]);
        }
        timesteps = ts.stream().mapToLong(Long::longValue).toArray();
        history.clear();
        counter = 0;
        currentSample = null;
        rkSum = null;
    }

    @Override
    public double[] timesteps() { return Spacing.toDoubles(timesteps); }

    @Override
    public Tensor step(Tensor modelOutput, int stepIndex, Tensor sample, NoiseSource noise) {
        return counter < prkCount && !skipPrk ? stepPrk(modelOutput, sample) : stepPlms(modelOutput, stepIndex, sample);
    }

    private Tensor stepPrk(Tensor out, Tensor sample) {
        long diff = counter % 2 == 1 ? 0 : stepRatio / 2;
        long prev = timesteps[counter] - diff;
        long t = timesteps[counter / 4 * 4];
        Tensor used = out;
        switch (counter % 4) {
            case 0 -> {
                rkSum = Scope.keep(Ops.mul(out, 1.0 / 6));
                history.add(Scope.keep(out));
                currentSample = Scope.keep(sample);
            }
            case 1, 2 -> rkSum = Scope.keep(Ops.add(rkSum, Ops.mul(out, 1.0 / 3)));
            default -> {
                used = Ops.add(rkSum, Ops.mul(out, 1.0 / 6));
                rkSum = null;
            }
        }
        Tensor base = currentSample != null ? currentSample : sample;
        counter++;
        return previousSample(base, t, prev, used);
    }

    private Tensor stepPlms(Tensor out, int stepIndex, Tensor sample) {
        long t = timesteps[stepIndex];
        long prev = t - stepRatio;
        if (counter != 1) {
            while (history.size() > 3) history.remove(0);
            history.add(Scope.keep(out));
        } else {
            prev = t;
            t = t + stepRatio;
        }
        int n = history.size();
        Tensor used;
        if (n == 1 && counter == 0) {
            used = out;
            currentSample = Scope.keep(sample);
        } else if (n == 1 && counter == 1) {
            used = Ops.div(Ops.add(out, history.get(0)), 2);
            sample = currentSample;
            currentSample = null;
        } else if (n == 2) {
            used = Ops.div(Ops.sub(Ops.mul(history.get(1), 3), history.get(0)), 2);
        } else if (n == 3) {
            used = Ops.div(Ops.add(Ops.sub(Ops.mul(history.get(2), 23), Ops.mul(history.get(1), 16)), Ops.mul(history.get(0), 5)), 12);
        } else {
            used = Ops.mul(Ops.sub(Ops.add(Ops.sub(Ops.mul(history.get(n - 1), 55), Ops.mul(history.get(n - 2), 59)),
                    Ops.mul(history.get(n - 3), 37)), Ops.mul(history.get(n - 4), 9)), 1.0 / 24);
        }
        counter++;
        return previousSample(sample, t, prev, used);
    }

    /** Formula (9) of the PNDM paper: one step from t to prev along the model output. */
    private Tensor previousSample(Tensor sample, long t, long prev, Tensor out) {
        double a = schedule.alphaCumprod((int) t);
        double aPrev = prev >= 0 ? schedule.alphaCumprod((int) prev) : finalAlphaCumprod;
        double b = 1 - a, bPrev = 1 - aPrev;
        if (vPrediction) out = Ops.add(Ops.mul(out, Math.sqrt(a)), Ops.mul(sample, Math.sqrt(b)));
        double sampleCoeff = Math.sqrt(aPrev / a);
        double denom = a * Math.sqrt(bPrev) + Math.sqrt(a * b * aPrev);
        return Ops.sub(Ops.mul(sample, sampleCoeff), Ops.mul(out, (aPrev - a) / denom));
    }
}
