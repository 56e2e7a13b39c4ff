package dev.perfusion.cli;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** What `perfusion --help` and each command's --help show: every summary whole, every option described. */
class HelpTest {
    @Test
    void theListOfCommandsShowsEverySummaryWhole() {
        String help = help();
        CommandSpec top = Main.commandLine().getCommandSpec();
        for (CommandLine sub : top.subcommands().values()) {
            CommandSpec command = sub.getCommandSpec();
            String summary = summary(command);
            assertTrue(summary.matches("[A-Z].*[.?!]"), command.qualifiedName() + ": the summary is not one whole sentence: " + summary);
            // one line of the list: the command's name, then its whole summary (the rest is in the command's own help)
            assertTrue(help.lines().anyMatch(line -> line.matches("  " + command.name() + " +" + java.util.regex.Pattern.quote(summary))),
                    command.qualifiedName() + ": `perfusion --help` does not show the summary whole on one line: " + summary + "\n" + help);
        }
    }

    @Test
    void everyOptionAndParameterIsDescribed() {
        for (CommandSpec command : commands(Main.commandLine().getCommandSpec())) {
            List<ArgSpec> args = new ArrayList<>(command.options());
            args.addAll(command.positionalParameters());
            for (ArgSpec arg : args) {
                String name = command.qualifiedName() + " " + (arg.isOption() ? ((CommandLine.Model.OptionSpec) arg).longestName() : arg.paramLabel());
                String text = String.join(" ", arg.description());
                // what is left beside the default and the listed choices must say what the option is
                String words = text.replaceAll("\\(default: [^)]*\\)\\.?", "").replaceAll("\\$\\{[A-Z-]+}", "");
                assertTrue(words.matches("(?s).*[A-Za-z]{3,}.*[A-Za-z]{3,}.*"), name + " has no description: '" + text + "'");
            }
        }
    }

    @Test
    void everyCommandsHelpPrintsWithItsPlaceholdersFilledIn() {
        for (CommandSpec command : commands(Main.commandLine().getCommandSpec())) {
            List<String> words = List.of(command.qualifiedName().split(" "));
            List<String> args = new ArrayList<>(words.subList(1, words.size()));
            args.add("--help");
            String help = help(args.toArray(String[]::new));
            assertTrue(help.contains("Usage: " + command.qualifiedName()), help);
            assertFalse(help.contains("${"), command.qualifiedName() + ": a placeholder is left in its help:\n" + help);
        }
    }

    /** The line the list of commands shows: the header where a command has one, else its description's first line. */
    private static String summary(CommandSpec command) {
        String[] header = command.usageMessage().header();
        String[] description = command.usageMessage().description();
        return header.length > 0 ? header[0] : description.length > 0 ? description[0] : "";
    }

    private static List<CommandSpec> commands(CommandSpec top) {
        List<CommandSpec> all = new ArrayList<>(List.of(top));
        for (CommandLine sub : top.subcommands().values()) all.addAll(commands(sub.getCommandSpec()));
        return all;
    }

    /** What `perfusion ARGS` prints (help on the standard output, and nothing that needs libtorch). */
    private static String help(String... args) {
        PrintStream out = System.out;
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        int rc;
        try {
            System.setOut(new PrintStream(buffer, true, StandardCharsets.UTF_8));
            rc = Main.run(args.length == 0 ? new String[] {"--help"} : args);
        } finally {
            System.setOut(out);
        }
        assertEquals(0, rc, String.join(" ", args));
        return buffer.toString(StandardCharsets.UTF_8);
    }
}
