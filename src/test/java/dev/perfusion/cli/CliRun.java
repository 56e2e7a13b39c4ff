package dev.perfusion.cli;

import dev.perfusion.ChildJvm;
import dev.perfusion.world.Bundled;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** One run of the {@code perfusion} command in this JVM: its exit code and what it printed to stdout and stderr. */
record CliRun(int rc, String out, String err) {
    String all() { return out + err; }

    static CliRun of(String... args) {
        PrintStream out = System.out, err = System.err;
        ByteArrayOutputStream o = new ByteArrayOutputStream(), e = new ByteArrayOutputStream();
        int rc;
        try {
            System.setOut(new PrintStream(o, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(e, true, StandardCharsets.UTF_8));
            rc = Main.run(args);
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
        return new CliRun(rc, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8));
    }

    /**
     * The command line that runs {@code perfusion ARGS} in a child JVM on the tests' class path, with the bundled model's
     * home, the heap {@code xmx} and any more JVM options: for what only a process of its own shows (a signal, a
     * heap too small, a server's printed address).
     */
    static List<String> childCommand(String xmx, List<String> jvmOptions, String... args) {
        List<String> options = new ArrayList<>(List.of("-Xmx" + xmx, "-Djava.awt.headless=true", "-Dperfusion.home=" + Bundled.home()));
        options.addAll(jvmOptions);
        return ChildJvm.command(Main.class, options, args);
    }
}
