package dev.perfusion.cli;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

class TerminalProgressTest {
    /** The same task run again (the next concept's training, the next picture) counts its time from its own start. */
    @Test
    void aTaskRunAgainStartsItsClockAgain() throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        TerminalProgress progress = new TerminalProgress(new PrintStream(bytes, true, StandardCharsets.UTF_8));
        progress.update("training my-teddy", 1, 2, "");
        progress.update("training my-teddy", 2, 2, "");
        Thread.sleep(1200);
        progress.update("training my-teddy", 1, 2, "");
        List<String> lines = bytes.toString(StandardCharsets.UTF_8).lines().toList();
        assertEquals(3, lines.size(), lines.toString());
        Matcher elapsed = Pattern.compile(", ([0-9.]+)s elapsed").matcher(lines.get(2));
        assertTrue(elapsed.find(), lines.get(2));
        assertTrue(Double.parseDouble(elapsed.group(1)) < 1.0, "the second run's clock started at its step 1: " + lines.get(2));
    }
}
