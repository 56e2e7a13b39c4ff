package dev.perfusion.cli;

import java.util.function.Supplier;

/** A long run stopped from outside (Ctrl-C, a kill) ends without a word of its own: this says where its work is kept. */
final class StopNotice {
    private StopNotice() {}

    interface Work<T> {
        T run() throws Exception;
    }

    /** Runs {@code work}; if the process is stopped meanwhile, its shutdown prints {@code notice} on stderr. */
    static <T> T around(Supplier<String> notice, Work<T> work) throws Exception {
        Thread onStop = new Thread(() -> System.err.println("\nstopped: " + notice.get()), "perfusion-stop-notice");
        Runtime.getRuntime().addShutdownHook(onStop);
        try {
            return work.run();
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(onStop);
            } catch (IllegalStateException e) {
                // the process is already stopping: the notice is said
            }
        }
    }
}
