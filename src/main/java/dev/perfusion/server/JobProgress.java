package dev.perfusion.server;

import dev.perfusion.util.Progress;
import dev.perfusion.util.RateClock;

import java.nio.file.Path;
import java.util.function.Function;

/**
 * The library's progress, put on a job: steps, rate and time left of the current task (as the terminal bar counts
 * them), messages, the loss curve and sample pictures; every change is announced. It is also where a cancelled job
 * stops: the next progress report after the request throws {@link Cancelled}, and the library's own scopes and
 * try-blocks unwind the work.
 */
final class JobProgress implements Progress {
    /** Thrown into the work when its job was cancelled. */
    static final class Cancelled extends RuntimeException {
        Cancelled() { super("cancelled", null, false, false); }
    }

    private final Job job;
    private final Runnable changed;
    /** The URL of a file the work wrote (a sample picture), or null for one the page cannot be shown. */
    private final Function<Path, String> urlOf;
    private final RateClock clock = new RateClock();

    JobProgress(Job job, Runnable changed, Function<Path, String> urlOf) {
        this.job = job;
        this.changed = changed;
        this.urlOf = urlOf;
    }

    /** Stops the work here when its job was cancelled. */
    void checkCancelled() {
        if (job.cancelRequested.get()) throw new Cancelled();
    }

    /** Tells the listeners of a change the work made itself (a picture added). */
    void announce() {
        changed.run();
    }

    @Override
    public void update(String task, long done, long total, String detail) {
        checkCancelled();
        clock.update(task, done, total, System.nanoTime());
        job.progress(task, done, total, detail, clock.rate(), clock.secondsLeft());
        changed.run();
    }

    @Override
    public void message(String text) {
        job.message(text);
        changed.run();
    }

    @Override
    public void metric(String name, long step, double value) {
        if (name.equals("loss")) job.loss(step, value);
    }

    @Override
    public void wrote(Path file) {
        String url = urlOf.apply(file);
        if (url != null) {
            job.sample(url);
            changed.run();
        }
    }
}
