package dev.perfusion.pretrain;

import dev.perfusion.nn.PartGradients;
import dev.perfusion.pretrain.WorldBatches.Batch;
import dev.perfusion.tensor.Scope;
import dev.perfusion.tensor.Threads;
import dev.perfusion.util.Phases;
import dev.perfusion.util.Stopping;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
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
        Stopping.check(); // a stop on the last step of the stage before: this one does not begin
        Stage.Plan plan = stage.plan();
        TrainedWeights weights = new TrainedWeights(stage, run);
        TrainedWeights.Resumed from = weights.resume();
        int step = from.step();
        TrainedWeights.checkNotPast(run.work(), plan.name(), step, plan.steps());
        boolean sideBySide = Threads.configured() > 1, split = sideBySide && stage.splitsBatches();
        try (Threads.SideBySide parts = split ? Threads.sideBySide(Threads.configured(), "batch-parts") : null;
             Threads.SideBySide beside = !split && sideBySide && stage.preparesBatches() ? Threads.sideBySide(1, "batch-preparation") : null) {
            return train(stage, withScheduleOf(plan, from), weights, from, beside, parts);
        }
    }

    /**
     * The stage's plan, with the warm-up its run began with: a run's warm-up is capped at its steps, so one started with
     * few steps and resumed with more would otherwise warm up again from a fraction of the rate. More (or fewer) steps
     * than the run began with stretch (or shorten) the cosine decay from here: said, with the rate it moves from and to.
     */
    private Stage.Plan withScheduleOf(Stage.Plan plan, TrainedWeights.Resumed from) {
        int warmup = Math.min(from.warmupSteps().orElse(plan.warmupSteps()), plan.steps()); // as the recipe caps it
        Stage.Plan resumed = new Stage.Plan(plan.name(), plan.activity(), plan.lossName(), plan.steps(), warmup, plan.learningRate(), plan.data());
        int then = from.scheduleSteps().orElse(plan.steps());
        if (then != plan.steps()) {
            run.progress().message(String.format(Locale.ROOT, "note: the %s stage's run began for %d steps, now %d: its learning rate's decay is "
                    + "stretched over them from step %d, where it moves from %.3g to %.3g", plan.name(), then, plan.steps(), from.step(),
                    plan.learningRate() * learningRateScale(from.step(), then, warmup), plan.learningRate() * learningRateScale(from.step(), plan.steps(), warmup)));
        }
        return resumed;
    }

    /**
     * The loop from {@code step}. With {@code beside}, each batch is drawn and prepared on its worker while the step
     * before trains. With {@code parts}, each step's batch is split into parts, one on each of its workers, and each
     * worker runs its part's forward and backward, then draws and prepares its part of the next batch: equal shares
     * of the work on every core. The diffusion stage's frozen encoders and its UNet are each too small for two
     * threads per operation, so they use the cores side by side instead.
     */
    private Pretrainer.Result train(Stage stage, Stage.Plan plan, TrainedWeights weights, TrainedWeights.Resumed from, Threads.SideBySide beside,
                                    Threads.SideBySide parts) throws IOException {
        int step = from.step();
        String name = plan.name();
        int total = plan.steps();
        if (parts != null) PartGradients.define(weights.leaves()); // the parts add into them in place
        CompletableFuture<Batch> next = parts != null ? CompletableFuture.completedFuture(preparedInParts(stage, plan, step, parts))
                : load(stage, plan, beside, step);
        boolean kept = beside != null || parts != null; // batches prepared on workers, kept past their scopes
        double smoothed = from.smoothedLoss(); // NaN at the start
        Phases phases = run.phases();
        phases.restart();
        while (step < total) {
            Batch batch = next.join();
            if (parts == null) next = step + 1 < total ? load(stage, plan, beside, step + 1) : null; // drawn while this step trains
            phases.lap("waiting for data");
            double loss, regulariser;
            try (Scope s = Scope.open()) {
                if (parts != null) {
                    StepOfParts done = stepOfParts(stage, plan, batch, step, total, weights, parts);
                    loss = done.loss();
                    regulariser = done.regulariser();
                    next = done.next() == null ? null : CompletableFuture.completedFuture(done.next());
                    phases.lap("forward and backward, the next batch (parts side by side)");
                    checkFinite(loss, name, step);
                    checkFinite(regulariser, name + " regulariser", step);
                } else {
                    if (beside == null && stage.preparesBatches()) {
                        batch = stage.prepare(batch);
                        phases.lap("frozen encoders");
                    }
                    Stage.Loss forward = stage.loss(batch, step);
                    loss = forward.logged();
                    regulariser = forward.regulariser();
                    checkFinite(loss, name, step);
                    checkFinite(regulariser, name + " regulariser", step);
                    forward.objective().backward();
                    phases.lap("backward");
                }
            } finally {
                if (kept) batch.release();
            }
            phases.lap("freeing tensors");
            weights.lrScale(learningRateScale(step, total, plan.warmupSteps()));
            weights.step(step, phases);
            step++;
            smoothed = Double.isNaN(smoothed) ? loss : 0.98 * smoothed + 0.02 * loss;
            run.losses().append(name, step, loss, run.seconds());
            if (stage.regulariser() != null) run.losses().append(stage.regulariser(), step, regulariser, run.seconds());
            boolean done = step == total, stopping = false;
            try {
                run.progress().update(plan.activity(), step, total, String.format(Locale.ROOT, "%s %.4f", plan.lossName(), smoothed));
            } catch (Stopping.Stopped e) {
                stopping = true; // the process is stopping (a command's progress says so): this step is kept
            }
            stopping = !done && (stopping || Stopping.requested()); // the last step finishes the stage
            phases.lap("loss log, progress");
            if (!stopping && ((sampleEvery > 0 && step % sampleEvery == 0) || done)) stage.samples(weights, step);
            if (!done && ((checkpointEvery > 0 && step % checkpointEvery == 0) || overTime() || stopping)) {
                weights.save(step, total, plan.warmupSteps(), smoothed);
                if (overTime() || stopping) {
                    settle(next, kept);
                    return new Pretrainer.Result(false, name, step, smoothed, run.seconds(), null);
                }
            }
            phases.skip(); // samples and checkpoints are not training steps
        }
        Path model = stage.finish(weights, smoothed);
        weights.deleteCheckpoint();
        return new Pretrainer.Result(true, name, step, smoothed, run.seconds(), model);
    }

    /**
     * Waits for the batch no step will use, made on a worker or the loader meanwhile, and frees it where it was kept:
     * nothing of the stage computes once it has returned.
     */
    private static void settle(CompletableFuture<Batch> next, boolean kept) {
        if (next == null) return;
        try {
            Batch unused = next.join();
            if (kept) unused.release();
        } catch (java.util.concurrent.CompletionException | java.util.concurrent.CancellationException e) {
            // a batch that failed to load is no batch to free; the stage ends at its checkpoint either way
        }
    }

    /** A step's loss, and the next step's batch (null after the last step). */
    private record StepOfParts(double loss, double regulariser, Batch next) {}

    /** What one part of a step logs, and its part of the next batch. */
    private record PartOfStep(double logged, double regulariser, Batch next) {}

    /**
     * The step on its parts, side by side: each part's forward and backward (their gradients are added into the
     * weights' in part order), then its part of the next batch.
     */
    private StepOfParts stepOfParts(Stage stage, Stage.Plan plan, Batch batch, int step, int total, TrainedWeights weights,
                                    Threads.SideBySide parts) {
        int count = parts.workers();
        boolean more = step + 1 < total;
        List<PartOfStep> done = PartGradients.run(parts, count, k -> {
            double logged, regulariser;
            List<Tensor> gradients;
            try (Scope s = Scope.open()) {
                Stage.Loss part = stage.loss(batch, step, k, count);
                logged = part.logged();
                regulariser = part.regulariser();
                gradients = PartGradients.of(part.objective(), weights.leaves());
            }
            return new PartGradients.Part<>(new PartOfStep(logged, regulariser, more ? prepared(stage, plan, step + 1, k, count) : null), gradients);
        }, weights.leaves());
        double loss = 0, regulariser = 0;
        for (PartOfStep p : done) {
            loss += p.logged();
            regulariser += p.regulariser();
        }
        return new StepOfParts(loss, regulariser, more ? joined(done.stream().map(PartOfStep::next).toList()) : null);
    }

    /** Step {@code step}'s batch, drawn and prepared in parts side by side. */
    private Batch preparedInParts(Stage stage, Stage.Plan plan, int step, Threads.SideBySide parts) {
        int count = parts.workers();
        return joined(parts.run(count, k -> prepared(stage, plan, step, k, count)));
    }

    /** The parts of a batch as one batch, kept; the parts are freed. */
    private static Batch joined(List<Batch> parts) {
        try (Scope s = Scope.inference()) {
            return Batch.concat(parts).kept();
        } finally {
            parts.forEach(Batch::release);
        }
    }

    private CompletableFuture<Batch> load(Stage stage, Stage.Plan plan, Threads.SideBySide beside, int step) {
        if (beside == null) return run.batches().load(plan.data(), step);
        return beside.async(() -> prepared(stage, plan, step, 0, 1));
    }

    /** Part {@code part} of {@code parts} of step {@code step}'s batch, drawn and prepared on this thread, kept past its scope. */
    private Batch prepared(Stage stage, Stage.Plan plan, int step, int part, int parts) {
        try (Scope s = Scope.inference()) { // the encoders' intermediate tensors go at once, not when the GC finds them
            return stage.prepare(run.batches().now(plan.data(), step, part, parts)).kept();
        }
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
