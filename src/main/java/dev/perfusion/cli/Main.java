package dev.perfusion.cli;

import dev.perfusion.tensor.Libtorch;
import dev.perfusion.tensor.Threads;
import dev.perfusion.util.Stopping;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ScopeType;
import picocli.CommandLine.Spec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.UnmatchedArgumentException;

import java.io.PrintWriter;

/** Entry point of the {@code perfusion} command. */
@Command(name = "perfusion", mixinStandardHelpOptions = true, version = "perfusion 0.1.0",
        description = "Stable Diffusion in Java on libtorch, and Perfusion: key-locked rank-one personalization.",
        subcommands = {DemoCommand.class, GenerateCommand.class, TrainCommand.class, InspectCommand.class, SProfileCommand.class, ConvertCommand.class, CovarianceCommand.class, BenchCommand.class, PretrainCommand.class, JudgesCommand.class, DemoBundleCommand.class, PromptFollowingCommand.class, EvalCommand.class, ServeCommand.class, CommandLine.HelpCommand.class})
public final class Main {
    @Spec CommandSpec spec;
    private Integer threads;

    @Option(names = "--threads", paramLabel = "N", scope = ScopeType.INHERIT,
            description = "CPU threads libtorch computes with (default: every core, here ${sys:perfusion.cores}).")
    void threads(int n) {
        if (n < 1) throw new ParameterException(spec.commandLine(), "--threads must be at least 1, got " + n);
        threads = n;
    }

    /** The exit code of a command stopped by a signal (128 + SIGINT), as a shell reports Ctrl-C. */
    static final int STOPPED = 130;

    public static void main(String[] args) {
        System.exit(run(args));
    }

    static int run(String... args) {
        try {
            return commandLine().execute(args);
        } catch (OutOfMemoryError e) {
            // an Error passes picocli's handler: without this, a page of stack trace and no word on what to change
            System.err.println(outOfMemory(e));
            return 1;
        }
    }

    /** What an out-of-memory error says to a person: which limit was met, and what sets it. */
    static String outOfMemory(OutOfMemoryError e) {
        String what = e.getMessage() == null ? "" : ": " + e.getMessage().strip().lines().findFirst().orElse("");
        long limit = org.bytedeco.javacpp.Pointer.maxPhysicalBytes();
        return "error: out of memory" + what + ". The JVM's heap is " + megabytes(Runtime.getRuntime().maxMemory()) + " MB and "
                + (limit > 0 ? "the process may use " + megabytes(limit) + " MB (JavaCPP's limit, 4 times the heap unless"
                        + " -Dorg.bytedeco.javacpp.maxPhysicalBytes says otherwise)" : "JavaCPP sets the process no limit")
                + ": PERFUSION_JAVA_OPTS=-Xmx<size> raises both; smaller pictures, fewer at once or --precision bf16 need less";
    }

    private static long megabytes(long bytes) {
        return Math.round(bytes / 1048576.0);
    }

    /** The command line with its handlers: what {@link #run} executes, and what tests read the model of. */
    static CommandLine commandLine() {
        System.setProperty("perfusion.cores", Integer.toString(Threads.cores()));
        Main main = new Main();
        CommandLine cl = new CommandLine(main);
        cl.setExecutionStrategy(parsed -> {
            Integer helpExit = CommandLine.executeHelpRequest(parsed);
            if (helpExit != null) return helpExit;
            // Before any command touches libtorch, so that only the bundled one loads (help needs none).
            Libtorch.ensureLoaded();
            Threads.use(main.threads != null ? main.threads : Threads.cores());
            if (main.threads != null && main.threads > Threads.cores()) {
                cl.getErr().println("warning: --threads " + main.threads + " is more than this machine's " + Threads.cores()
                        + " cores: the threads beyond them take turns with the others and slow every operation");
            }
            return Stopping.during(() -> new CommandLine.RunLast().execute(parsed));
        });
        cl.setParameterExceptionHandler(Main::badArguments);
        // Bad input is reported as one clear line, not a stack trace; --debug shows the trace.
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            if (ex instanceof Stopping.Stopped) return STOPPED; // the process is stopping: what the work left is said where it stopped
            if (Boolean.getBoolean("perfusion.debug") || System.getenv("PERFUSION_DEBUG") != null) ex.printStackTrace();
            String msg = ex.getMessage() != null ? ex.getMessage() : ex.toString();
            cmd.getErr().println("error: " + msg);
            return ex instanceof IllegalArgumentException || ex instanceof java.io.IOException
                    || ex instanceof java.io.UncheckedIOException ? 2 : 1;
        });
        return cl;
    }

    /**
     * A command line that does not parse: what was wrong in one line, what an option of an earlier version is
     * called now, picocli's suggestions, and where the command's options are listed (rather than all of its help).
     */
    private static int badArguments(ParameterException ex, String[] args) {
        CommandLine cmd = ex.getCommandLine();
        PrintWriter err = cmd.getErr();
        err.println("error: " + ex.getMessage());
        if (ex instanceof UnmatchedArgumentException unmatched) {
            for (String arg : unmatched.getUnmatched()) {
                RenamedOptions.hint(cmd.getCommandName(), arg).ifPresent(err::println);
            }
            UnmatchedArgumentException.printSuggestions(unmatched, err);
        }
        err.println("see '" + cmd.getCommandSpec().qualifiedName() + " --help'");
        return cmd.getCommandSpec().exitCodeOnInvalidInput();
    }
}
