package dev.perfusion.util;

/** Where long work reports how far it got; the CLI draws a bar, tests and libraries may ignore it. */
public interface Progress {
    /** {@code done} of {@code total} units finished; {@code detail} is a short status such as "loss 0.123". */
    void update(String task, long done, long total, String detail);

    /** A one-line message (a warning or a stage change). */
    default void message(String text) {}

    /** A measured value at a step (the training loss), for whoever plots it; the bar already shows it as detail. */
    default void metric(String name, long step, double value) {}

    /** A file the work wrote along the way (a training sample picture), for whoever shows it. */
    default void wrote(java.nio.file.Path file) {}

    Progress NONE = (task, done, total, detail) -> {};

    /** {@code inner}'s messages without its step counts: for work done side by side, whose steps would interleave. */
    static Progress messagesOnly(Progress inner) {
        return new Progress() {
            @Override public void update(String task, long done, long total, String detail) {}
            @Override public void message(String text) { inner.message(text); }
        };
    }
}
