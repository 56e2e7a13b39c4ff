package dev.perfusion.util;

/** Where long work reports how far it got; the CLI draws a bar, tests and libraries may ignore it. */
public interface Progress {
    /** {@code done} of {@code total} units finished; {@code detail} is a short status such as "loss 0.123". */
    void update(String task, long done, long total, String detail);

    /** A one-line message (a warning or a stage change). */
    default void message(String text) {}

    Progress NONE = (task, done, total, detail) -> {};
}
