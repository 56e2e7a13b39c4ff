package dev.perfusion.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.perfusion.world.Bundled;
import dev.perfusion.world.BundledWorld;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * A server on a free port of 127.0.0.1 over folders of its own: models (a copy of the bundled model, and "broken", a
 * copy whose UNet weights are another network's), a concept library holding the shipped my-cat, outputs, the shipped
 * example photos; small upload limits. HTTP helpers for the tests.
 */
final class ServerFixture implements AutoCloseable {
    static {
        // to send the Host header of a DNS-rebinding page (java.net.http refuses a Host of one's own otherwise)
        System.setProperty("jdk.httpclient.allowRestrictedHeaders", "host");
    }

    /** Small enough for a test to exceed: 256 KiB a photo, 4 photos, 1 MiB a concept file, 2 MiB a request. */
    static final PerfusionServer.Limits LIMITS = new PerfusionServer.Limits(256 << 10, 4, 1 << 20, 2 << 20);

    final Path root, models, concepts, outputs;
    final PerfusionServer server;
    final String base;
    final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    final ObjectMapper json = new ObjectMapper();

    ServerFixture(Path root) throws IOException {
        this.root = root;
        // the covariance of the bundled model's text encoder, computed once for the server's test classes (keyed by all it depends on)
        System.setProperty("perfusion.cache", Path.of("target", "serve-test-cache").toAbsolutePath().toString());
        models = Files.createDirectories(root.resolve("models"));
        BundledWorld.copyOfModel(models.resolve("world"));
        BundledWorld.copyOfModel(models.resolve("broken"));
        Files.copy(Bundled.model().resolve("text_encoder/model.safetensors"), models.resolve("broken/unet/diffusion_pytorch_model.safetensors"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        concepts = Files.createDirectories(root.resolve("concepts"));
        Files.copy(Bundled.concept("my-cat"), concepts.resolve("my-cat.safetensors"));
        outputs = root.resolve("outputs");
        server = PerfusionServer.start(settings(0));
        base = "http://127.0.0.1:" + server.port();
    }

    /** This fixture's folders and limits, served on {@code port} (0: a free one). */
    PerfusionServer.Settings settings(int port) {
        return new PerfusionServer.Settings("127.0.0.1", port, models, concepts, outputs,
                Bundled.home().resolve("models/examples"), new Device(torch.DeviceType.CPU), torch.ScalarType.Float, LIMITS);
    }

    @Override
    public void close() {
        server.close();
    }

    /** A response: status and body. */
    record Answer(int status, byte[] body, HttpResponse<byte[]> response) {
        String text() { return new String(body, StandardCharsets.UTF_8); }

        JsonNode json() {
            try {
                return new ObjectMapper().readTree(body);
            } catch (IOException e) {
                throw new AssertionError("not JSON (" + status + "): " + text(), e);
            }
        }
    }

    Answer send(HttpRequest.Builder request) {
        try {
            HttpResponse<byte[]> r = http.send(request.timeout(Duration.ofSeconds(60)).build(), HttpResponse.BodyHandlers.ofByteArray());
            return new Answer(r.statusCode(), r.body(), r);
        } catch (IOException e) {
            throw new AssertionError("no answer: " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    Answer get(String path) {
        return send(HttpRequest.newBuilder(URI.create(base + path)).GET());
    }

    Answer delete(String path) {
        return send(HttpRequest.newBuilder(URI.create(base + path)).DELETE());
    }

    Answer postJson(String path, Object body) {
        try {
            String text = body instanceof String s ? s : json.writeValueAsString(body);
            return send(HttpRequest.newBuilder(URI.create(base + path)).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(text)));
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    /** A multipart form: fields, then files as (field, file name, bytes). */
    Answer postForm(String path, Map<String, String> fields, List<Part> files) {
        return send(form(path, fields, files));
    }

    /** The request of {@link #postForm}, for a caller that sets more on it (Expect: 100-continue). */
    HttpRequest.Builder form(String path, Map<String, String> fields, List<Part> files) {
        String boundary = "----perfusion" + UUID.randomUUID();
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        try {
            for (var f : fields.entrySet()) {
                body.write(("--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + f.getKey() + "\"\r\n\r\n" + f.getValue() + "\r\n")
                        .getBytes(StandardCharsets.UTF_8));
            }
            for (Part p : files) {
                body.write(("--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + p.field() + "\"; filename=\"" + p.fileName()
                        + "\"\r\nContent-Type: application/octet-stream\r\n\r\n").getBytes(StandardCharsets.UTF_8));
                body.write(p.bytes());
                body.write("\r\n".getBytes(StandardCharsets.UTF_8));
            }
            body.write(("--" + boundary + "--\r\n").getBytes(StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        return HttpRequest.newBuilder(URI.create(base + path)).header("Content-Type", "multipart/form-data; boundary=" + boundary)
                .POST(HttpRequest.BodyPublishers.ofByteArray(body.toByteArray()));
    }

    /** How long a test waits for work before it calls it hung; far beyond any busy machine's time. */
    static final Duration HANG_GUARD = Duration.ofMinutes(15);

    record Part(String field, String fileName, byte[] bytes) {}

    /**
     * The job once it has ended (done, failed or cancelled), polled. The limit only stops a hung job: a 2-step training
     * run took over two minutes with a pretraining run and two other test JVMs on the same 2 cores.
     */
    JsonNode awaitEnd(String id) {
        long deadline = System.nanoTime() + HANG_GUARD.toNanos();
        while (System.nanoTime() < deadline) {
            JsonNode job = get("/api/jobs/" + id).json();
            String state = job.get("state").asText();
            if (state.equals("done") || state.equals("failed") || state.equals("cancelled")) return job;
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError(e);
            }
        }
        return fail("job " + id + " did not end within " + HANG_GUARD.toMinutes() + " minutes (hung?): " + get("/api/jobs/" + id).text());
    }

    /** A small generation on the bundled model. */
    static Map<String, Object> generation(String prompt, long seed, int steps) {
        return new java.util.LinkedHashMap<>(Map.of("prompt", prompt, "seed", seed, "steps", steps, "guidance", 5.0));
    }
}
