package dev.perfusion.pretrain;

import dev.perfusion.pretrain.WorldBatches.Batch;
import dev.perfusion.tensor.Scope;
import dev.perfusion.tensor.Threads;
import dev.perfusion.util.Phases;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;

/**
 * The training loop every stage runs: batch, forward (the stage's), backward, AdamW and EMA step, log; and around it
 * the bookkeeping that all stages share: resuming from the stage's checkpoint, sample pictures and checkpoints on
 * schedule, and stopping after a checkpoint once the run's time is up.
 */
final class StageLoop {
    private final PretrainingRun run;
    private final int checkpointEvery, sampleEvery;
    private final double maxSeconds;

    StageLoop(PretrainingRun run, int checkpointEvery, int sampleEvery, double maxSeconds) {
        this.run = run;
        this.checkpointEvery = checkpointEvery;
        this.sampleEvery = sampleEvery;
        this.maxSeconds = maxSeconds;
    }

    /** Runs or resumes the stage to its last step and writes its result; returns early at the time limit. */
    Pretrainer.Result train(Stage stage) throws IOException {
        Stage.Plan plan = stage.plan();
        TrainedWeights weights = new TrainedWeights(stage, run);
        int step = weights.resume();
        try (Threads.SideBySide beside = stage.preparesBatches() && Threads.configured() > 1 ? Threads.sideBySide(1, "batch-preparation") : null) {
            return train(stage, plan, weights, step, beside);
        }
    }

    /**
     * The loop from {@code step}. With {@code beside}, each batch is drawn and prepared on its worker while the step
     * before trains, and the step computes on one thread: the diffusion stage's frozen encoders and its UNet are
     * each too small for two threads per operation, so they use the two cores side by side instead.
     */
    private Pretrainer.Result train(Stage stage, Stage.Plan plan, TrainedWeights weights, int step, Threads.SideBySide beside) throws IOException {
        String name = plan.name();
        int total = plan.steps();
        CompletableFuture<Batch> next = load(stage, plan, beside, step);
        double smoothed = Double.NaN;
        Phases phases = run.phases();
        phases.restart();
        while (step < total) {
            Batch batch = next.join();
            next = step + 1 < total ? load(stage, plan, beside, step + 1) : null; // drawn while this step trains
            phases.lap("waiting for data");
            double loss;
            try (Scope s = Scope.open()) {
                if (beside == null && stage.preparesBatches()) {
                    batch = stage.prepare(batch);
                    phases.lap("frozen encoders");
                }
                Stage.Loss forward = stage.loss(batch, step);
                loss = forward.logged();
                checkFinite(loss, name, step);
                forward.objective().backward();
                phases.lap("backward");
            } finally {
                if (beside != null) batch.release(); // prepared beside, kept past its worker's scope
            }
            phases.lap("freeing tensors");
            weights.lrScale(learningRateScale(step, total, plan.warmupSteps()));
            weights.step(step, phases);
            step++;
            smoothed = Double.isNaN(smoothed) ? loss : 0.98 * smoothed + 0.02 * loss;
            run.losses().append(name, step, loss, run.seconds());
            run.progress().update(plan.activity(), step, total, String.format(Locale.ROOT, "%s %.4f", plan.lossName(), smoothed));
            boolean done = step == total;
            phases.lap("loss log, progress");
            if (step % sampleEvery == 0 || done) stage.samples(weights, step);
            if (!done && (step % checkpointEvery == 0 || overTime())) {
                weights.save(step);
                if (overTime()) {
                    if (beside != null && next != null) next.thenAccept(Batch::release); // the batch no step will use
                    return new Pretrainer.Result(false, name, step, smoothed, run.seconds(), null);
                }
            }
            phases.skip(); // samples and checkpoints are not training steps
        }
        Path model = stage.finish(weights, smoothed);
        weights.deleteCheckpoint();
        return new Pretrainer.Result(true, name, step, smoothed, run.seconds(), model);
    }

    private CompletableFuture<Batch> load(Stage stage, Stage.Plan plan, Threads.SideBySide beside, int step) {
        if (beside == null) return run.batches().load(plan.data(), step);
        return beside.async(() -> {
            try (Scope s = Scope.inference()) { // the encoders' intermediate tensors go at once, not when the GC finds them
                return stage.prepare(run.batches().now(plan.data(), step)).kept();
            }
        });
    }

    /** Linear warm-up, then a cosine decay to a tenth of the rate at the last step. */
    static double learningRateScale(int step, int total, int warmup) {
        double warm = warmup > 0 ? Math.min(1.0, (step + 1.0) / warmup) : 1.0;
        return warm * (0.1 + 0.45 * (1 + Math.cos(Math.PI * step / Math.max(1, total))));
    }

    private static void checkFinite(double loss, String stage, int step) {
        if (!Double.isFinite(loss)) throw new IllegalStateException(stage + " loss became " + loss + " at step " + (step + 1) + "; lower the learning rate and resume from the last checkpoint");
    }

    private boolean overTime() {
        return run.seconds() > maxSeconds;
    }
}
