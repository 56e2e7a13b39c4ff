package dev.perfusion.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/** {@code serve} as a user starts it: its folders, the address it prints, and the warning when it listens beyond this machine. */
class ServeCommandTest {
    private static final Pattern ADDRESS = Pattern.compile("perfusion serve: http://([^ ]+):(\\d+)/ ");

    @TempDir Path tmp;

    @Test
    void anotherHostIsWarnedAboutAndTheServerAnswersAtThePrintedAddress() throws Exception {
        List<String> lines = serveAndAsk("0.0.0.0");
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("warning: listening on 0.0.0.0: anyone who can reach this address can generate")
                && l.endsWith("there is no authentication")), lines.toString());
        assertTrue(Files.isRegularFile(tmp.resolve("concepts/my-cat.safetensors")), "a new library starts with the shipped concepts");
    }

    @Test
    void theDefaultLoopbackHostHasNoWarning() throws Exception {
        List<String> lines = serveAndAsk(null);
        assertTrue(lines.get(0).startsWith("perfusion serve: http://127.0.0.1:"), lines.toString());
        assertTrue(lines.stream().noneMatch(l -> l.startsWith("warning")), lines.toString());
    }

    @Test
    void badFlagsAreRefusedBeforeAnythingStarts() {
        CliRun port = CliRun.of("serve", "--port", "99999");
        assertNotEquals(0, port.rc(), port.all());
        assertTrue(port.err().contains("--port must be in 0..65535, got 99999"), port.err());
        CliRun models = CliRun.of("serve", "--port", "0", "--models", tmp.resolve("none").toString());
        assertNotEquals(0, models.rc(), models.all());
        assertTrue(models.err().contains("--models " + tmp.resolve("none") + ": no such folder"), models.err());
    }

    /** Starts serve in a child JVM on a free port, asks /api/health at the address it printed, and stops it; returns its output lines. */
    private List<String> serveAndAsk(String host) throws Exception {
        List<String> command = CliRun.childCommand("512m", List.of(),
                "serve", "--port", "0", "--threads", "1", "--concepts", tmp.resolve("concepts").toString(),
                "--outputs", tmp.resolve("outputs").toString());
        if (host != null) command.addAll(List.of("--host", host));
        Process child = new ProcessBuilder(command).redirectErrorStream(true).start();
        // a guard against a child that hangs before printing its address (reading its output would block), not a speed check
        CompletableFuture.delayedExecutor(10, TimeUnit.MINUTES).execute(child::destroyForcibly);
        List<String> lines = new ArrayList<>();
        try (BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8))) {
            Matcher address = null;
            for (String line; (line = out.readLine()) != null; ) {
                if (line.startsWith("perfusion serve:") || line.startsWith("warning")) lines.add(line);
                Matcher m = ADDRESS.matcher(line);
                if (m.find()) address = m;
                if (address != null && (host == null || line.startsWith("warning"))) break;
            }
            assertNotNull(address, "serve printed no address; its lines: " + lines);
            String reach = address.group(1).equals("0.0.0.0") ? "127.0.0.1" : address.group(1);
            HttpResponse<String> health = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                    URI.create("http://" + reach + ":" + address.group(2) + "/api/health")).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, health.statusCode(), health.body());
        } finally {
            child.destroy();
            // a guard against a child that will not stop, not a speed check
            if (!child.waitFor(2, TimeUnit.MINUTES)) child.destroyForcibly();
        }
        return lines;
    }
}
