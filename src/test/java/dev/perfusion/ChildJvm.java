package dev.perfusion;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The command line of a child JVM on the tests' class path: for what only a process of its own shows (a signal, a heap too small, a library loaded). */
public final class ChildJvm {
    private ChildJvm() {}

    /** {@code java OPTIONS -cp <the tests' class path> MAIN ARGS}. */
    public static List<String> command(Class<?> main, List<String> jvmOptions, String... args) {
        // Surefire runs tests from a manifest-only jar; the real class path is in its own property.
        String classPath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.addAll(jvmOptions);
        command.addAll(List.of("-cp", classPath, main.getName()));
        command.addAll(List.of(args));
        return command;
    }
}
