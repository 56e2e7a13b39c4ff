package dev.perfusion.cli;

import dev.perfusion.util.Stopping;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;

/** A long run stopped from outside (Ctrl-C, a kill) would end without a word of its own: this says where its work is kept. */
final class StopNotice {
    private StopNotice() {}

    interface Work<T> {
        T run() throws Exception;
    }

    /**
     * Runs {@code work}; if the process is stopped meanwhile, says {@code notice} on stderr once the work has ended at
     * its step (so the notice reads what it left), or, where it has not ended in {@link Stopping#GRACE_SECONDS}, as the
     * process ends.
     */
    static <T> T around(Supplier<String> notice, Work<T> work) throws Exception {
        AtomicBoolean said = new AtomicBoolean();
        Runnable say = () -> {
            if (said.compareAndSet(false, true)) System.err.println("\nstopped: " + notice.get());
        };
        Thread onStop = new Thread(() -> {
            Stopping.stopAndAwait(Stopping.GRACE_SECONDS);
            say.run();
        }, "perfusion-stop-notice");
        Runtime.getRuntime().addShutdownHook(onStop);
        try {
            T result = work.run();
            if (Stopping.requested()) said.set(true); // it ended on its own terms as the process stops, and says what it left
            return result;
        } catch (Stopping.Stopped e) {
            say.run();
            throw e;
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(onStop);
            } catch (IllegalStateException e) {
                // the process is already stopping: the notice is said
            }
        }
    }
}
