package dev.perfusion.util;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;

/**
 * The process's orderly stop (Ctrl-C, a kill): the work is asked to end at its next step and waited for before the
 * process exits. The exit runs libtorch's own exit handlers, which tear its state down; a thread still computing in
 * libtorch then crashes the JVM (a pretraining run stopped mid-step died so in half of the tries, in
 * {@code at::accelerator::getAccelerator} under {@code torch::autograd::grad}), so by then nothing may compute.
 *
 * <p>Work runs {@link #during} this; its loops end at their next step through {@link #check} (a command's progress
 * bar checks at every step) or by asking {@link #requested} where they have something to save first. The shutdown
 * hooks that must come after the work (the notice of what a stopped run left, the removal of unfinished files) wait
 * for it with {@link #stopAndAwait}.
 */
public final class Stopping {
    private Stopping() {}

    /** How long a stop waits for the work to reach the end of its step (a step of SD 1.5 at 512x512 on a CPU takes seconds). */
    public static final long GRACE_SECONDS = 60;

    /** Thrown into the work at its next step once the process is stopping. */
    public static final class Stopped extends RuntimeException {
        Stopped() {
            super("stopped", null, true, false); // what failed while stopping (a last write) is kept with it
        }
    }

    private static final AtomicBoolean REQUESTED = new AtomicBoolean();
    private static final Object LOCK = new Object();
    /** Work running now; guarded by {@link #LOCK}. */
    private static int running;

    static {
        try {
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                synchronized (LOCK) {
                    if (running > 0) System.err.println("\nstopping at the end of the step in progress (at most " + GRACE_SECONDS + " s)");
                }
                stopAndAwait(GRACE_SECONDS);
            }, "perfusion-stop"));
        } catch (IllegalStateException e) {
            // first used by another hook as the process stops: that hook waits itself
        }
    }

    /** Whether the process is stopping: work ends at its next step. */
    public static boolean requested() {
        return REQUESTED.get();
    }

    /** Ends the work here, by throwing {@link Stopped}, once the process is stopping. */
    public static void check() {
        if (REQUESTED.get()) throw new Stopped();
    }

    /** Runs {@code work}, which a stop of the process waits for. */
    public static <T> T during(Supplier<T> work) {
        synchronized (LOCK) {
            running++;
        }
        try {
            return work.get();
        } finally {
            synchronized (LOCK) {
                running--;
                LOCK.notifyAll();
            }
        }
    }

    /**
     * Asks the work to stop and waits until none runs, at most {@code seconds}; returns whether it ended. For
     * shutdown hooks: the process's own, and those whose task must come after the work.
     */
    public static boolean stopAndAwait(long seconds) {
        REQUESTED.set(true);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        synchronized (LOCK) {
            while (running > 0) {
                long left = deadline - System.nanoTime();
                if (left <= 0) return false;
                try {
                    TimeUnit.NANOSECONDS.timedWait(LOCK, left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return false;
                }
            }
        }
        return true;
    }
}
