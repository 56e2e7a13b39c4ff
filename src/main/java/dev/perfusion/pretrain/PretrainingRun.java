package dev.perfusion.pretrain;

import dev.perfusion.util.Phases;
import dev.perfusion.util.Progress;

import java.nio.file.Path;

/**
 * What every part of one pretraining run works with: the recipe, the work folder, where progress goes, the world's
 * batches (closing the run stops their loader thread), the loss log, the run's clock ({@code started}, from
 * {@link System#nanoTime}) and where its steps' time goes ({@code phases}).
 */
record PretrainingRun(BaseModelRecipe recipe, Path work, Progress progress, WorldBatches batches, LossLog losses, long started,
                      Phases phases)
        implements AutoCloseable {

    static PretrainingRun start(BaseModelRecipe recipe, Path work, Progress progress, Phases phases) {
        return new PretrainingRun(recipe, work, progress, new WorldBatches(recipe),
                new LossLog(work.resolve("losses.csv"), work.resolve("loss.png"), java.time.Instant.now() + "-" + ProcessHandle.current().pid()), System.nanoTime(), phases);
    }

    /** Seconds since this run started. */
    double seconds() {
        return (System.nanoTime() - started) / 1e9;
    }

    @Override
    public void close() {
        batches.close();
    }
}
