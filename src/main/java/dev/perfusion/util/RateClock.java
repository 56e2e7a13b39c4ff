package dev.perfusion.util;

/**
 * How fast a task goes, counted from its own start: another task, or the same task run again (the next picture's
 * denoising, the next concept's training: its count goes back or its total changes), starts the clock again, and a
 * resumed task counts only the units done since it started here.
 */
public final class RateClock {
    private String task = "";
    private long lastDone = -1, lastTotal = -1, started, doneAtStart;
    private double elapsed, rate = Double.NaN;

    /** Records {@code done} of {@code total} units of {@code task} at {@code nanos} (System.nanoTime); true when a new run began. */
    public boolean update(String task, long done, long total, long nanos) {
        boolean newRun = !task.equals(this.task) || done < lastDone || total != lastTotal;
        if (newRun) {
            this.task = task;
            started = nanos;
            doneAtStart = done;
        }
        lastDone = done;
        lastTotal = total;
        elapsed = (nanos - started) / 1e9;
        rate = done > doneAtStart && elapsed > 0 ? (done - doneAtStart) / elapsed : Double.NaN;
        return newRun;
    }

    /** Seconds since this run of the task started. */
    public double elapsedSeconds() { return elapsed; }

    /** Units per second so far in this run; NaN before its first unit. */
    public double rate() { return rate; }

    /** Seconds left at that rate; NaN while unknown. */
    public double secondsLeft() { return rate > 0 && lastTotal > 0 ? (lastTotal - lastDone) / rate : Double.NaN; }
}
