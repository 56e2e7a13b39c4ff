package dev.perfusion.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.perfusion.perfusion.Concept;
import dev.perfusion.training.TrainingImages;
import dev.perfusion.training.TrainingSettings;
import dev.perfusion.util.ProcessMemory;
import io.javalin.Javalin;
import io.javalin.config.SizeUnit;
import io.javalin.http.Context;
import io.javalin.http.HttpResponseException;
import io.javalin.http.UploadedFile;
import io.javalin.http.staticfiles.Location;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

/**
 * {@code perfusion serve}: the web app. A thin layer over the library: HTTP routes under {@code /api} that check what
 * a client sends and queue jobs ({@link GenerateJob}, {@link TrainJob}) on one worker, server-sent events of their
 * progress, and the static page. Files are read and written only inside the configured folders ({@link Folder}).
 */
public final class PerfusionServer implements AutoCloseable {
    /** What uploads may be: bytes of one photo or mask, photos (and masks) per training run, bytes of a concept file and of a request. */
    public record Limits(long photoBytes, int photos, long conceptBytes, long requestBytes) {
        /** 16 MiB a photo, 32 photos, 256 MiB a concept file (a K/V fine-tune of SD 1.5 holds whole matrices), 320 MiB a request. */
        public static final Limits DEFAULT = new Limits(16L << 20, 32, 256L << 20, 320L << 20);
    }

    /**
     * Where the server listens and the folders it serves: models (diffusers folders and checkpoints), the concept
     * library, the outputs (a folder per job), and the shipped example photos (read only; may be absent).
     */
    public record Settings(String host, int port, Path models, Path concepts, Path outputs, Path examples, Device device,
                           torch.ScalarType dtype, Limits limits) {}

    static {
        // Javalin and Jetty say what they do at INFO; the command says what matters itself
        if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
            System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        }
    }

    private final ObjectMapper json = new ObjectMapper();
    private final SecureRandom random = new SecureRandom();
    private final Instant started = Instant.now();
    private final Limits limits;
    /** Whether the server listens on a loopback address only: then every request must name a loopback host. */
    private final boolean loopbackOnly;
    private final Folder outputs;
    private final Folder examples;
    private final Models models;
    private final ConceptLibrary library;
    private final Events events;
    private final JobQueue queue;
    private final GenerateJob generate;
    private final TrainJob train;
    private final Javalin app;

    private PerfusionServer(Settings settings) throws IOException {
        this.limits = settings.limits();
        this.loopbackOnly = isLoopback(settings.host());
        this.outputs = new Folder(settings.outputs());
        this.examples = settings.examples() != null && Files.isDirectory(settings.examples()) ? new Folder(settings.examples()) : null;
        this.models = new Models(new Folder(settings.models()), settings.device(), settings.dtype());
        this.library = new ConceptLibrary(new Folder(settings.concepts()));
        this.events = new Events(json);
        this.queue = new JobQueue(events::changed, this::outputUrl);
        this.generate = new GenerateJob(models, library, outputs);
        this.train = new TrainJob(models, library);
        this.app = Javalin.create(config -> {
            config.startup.showJavalinBanner = false;
            config.startup.showOldJavalinVersionWarning = false;
            config.jetty.host = settings.host();
            config.jetty.port = settings.port();
            // Parts are checked against their own limits once read (uploadConcept, photos): a parser that stops mid-body
            // leaves the rest unread, and the client, still sending it, loses the answer
            config.jetty.multipartConfig.maxFileSize(limits.requestBytes(), SizeUnit.BYTES);
            config.jetty.multipartConfig.maxTotalRequestSize(limits.requestBytes(), SizeUnit.BYTES);
            config.jetty.multipartConfig.maxInMemoryFileSize(1, SizeUnit.MB);
            config.staticFiles.add(staticFiles -> {
                staticFiles.directory = "/dev/perfusion/server/web";
                staticFiles.location = Location.CLASSPATH;
                staticFiles.headers = Map.of("Cache-Control", "no-cache", "X-Content-Type-Options", "nosniff");
            });
            routes(config.routes);
        });
    }

    /** Starts a server; port 0 takes a free one ({@link #port}). */
    public static PerfusionServer start(Settings settings) throws IOException {
        PerfusionServer server = new PerfusionServer(settings);
        try {
            server.app.start();
        } catch (RuntimeException e) { // a port in use: the events' timer must not outlive the server that never was
            server.close();
            throw e;
        }
        return server;
    }

    public int port() { return app.port(); }

    @Override
    public void close() {
        queue.close();
        events.close();
        app.stop();
    }

    /** What the events' timer does every {@value Events#HEARTBEAT_SECONDS} s, now (for tests). */
    void heartbeat() { events.heartbeat(); }

    private void routes(io.javalin.config.RoutesConfig r) {
        r.before("/api/*", this::sameOriginOnly);
        r.before(this::loopbackHostOnly);
        r.get("/api/health", ctx -> send(ctx, 200, health()));
        r.get("/api/info", ctx -> send(ctx, 200, info()));
        r.get("/api/models", ctx -> send(ctx, 200, models.list()));
        r.get("/api/concepts", ctx -> send(ctx, 200, library.list()));
        r.get("/api/concepts/{name}", ctx -> send(ctx, 200, library.get(ctx.pathParam("name"))));
        r.post("/api/concepts", this::uploadConcept);
        r.delete("/api/concepts/{name}", ctx -> {
            library.delete(ctx.pathParam("name"));
            send(ctx, 200, Map.of("deleted", ctx.pathParam("name")));
        });
        r.get("/api/examples", ctx -> send(ctx, 200, exampleSets()));
        r.get("/api/examples/{set}/{file}", ctx -> sendFile(ctx, examplesFolder().existingFile(ctx.pathParam("set"), ctx.pathParam("file"))));
        r.post("/api/generate", this::submitGenerate);
        r.post("/api/train", this::submitTrain);
        r.get("/api/jobs", ctx -> send(ctx, 200, queue.all().stream().map(Job::view).toList()));
        r.get("/api/jobs/{id}", ctx -> send(ctx, 200, job(ctx).view()));
        r.post("/api/jobs/{id}/cancel", this::cancel);
        r.delete("/api/jobs/{id}", this::cancel);
        r.get("/api/outputs/{job}/{file}", ctx -> sendFile(ctx, outputs.existingFile(ctx.pathParam("job"), ctx.pathParam("file"))));
        r.get("/api/outputs/{job}/samples/{file}",
                ctx -> sendFile(ctx, outputs.existingFile(ctx.pathParam("job"), "samples", ctx.pathParam("file"))));
        // Javalin streams events only to a request that accepts them, and answers any other with an empty 200
        r.before("/api/events", ctx -> {
            String accept = ctx.header("Accept");
            if (accept == null || !accept.contains("text/event-stream")) {
                throw new ApiException(406, "/api/events is a stream of server-sent events: ask with the header"
                        + " 'Accept: text/event-stream' (a browser's EventSource does; curl -N -H 'Accept: text/event-stream')");
            }
        });
        r.sse("/api/events", client -> events.connect(client, queue.all()));

        r.exception(ApiException.class, (e, ctx) -> error(ctx, e.status, e.getMessage()));
        r.exception(JsonProcessingException.class, (e, ctx) -> error(ctx, 400, "the body is not the JSON this call takes: "
                + e.getOriginalMessage()));
        r.exception(IllegalArgumentException.class, (e, ctx) -> error(ctx, 400, e.getMessage()));
        r.exception(HttpResponseException.class, (e, ctx) -> error(ctx, e.getStatus(), e.getMessage()));
        r.exception(Exception.class, (e, ctx) -> {
            if (isTooLarge(e)) {
                error(ctx, 413, "the upload is too large (a photo at most " + mib(limits.photoBytes()) + ", a concept file "
                        + mib(limits.conceptBytes()) + ", a request " + mib(limits.requestBytes()) + ")");
            } else if (badMessage(e) != null) {
                error(ctx, 400, "the request could not be read: " + badMessage(e));
            } else {
                org.slf4j.LoggerFactory.getLogger(PerfusionServer.class).warn(ctx.method() + " " + ctx.path() + " failed", e);
                error(ctx, 500, "internal error: " + JobQueue.describe(e));
            }
        });
        r.error(404, ctx -> {
            if (ctx.path().startsWith("/api/") && !"application/json".equals(ctx.res().getContentType())) {
                error(ctx, 404, "no such call: " + ctx.method() + " " + ctx.path() + " (see the README's API)");
            }
        });
    }

    /**
     * A page of another site may send this browser's requests to the server (a form can post across sites): a
     * request that says it comes from another origin may only read.
     */
    private void sameOriginOnly(Context ctx) {
        String origin = ctx.header("Origin");
        if (origin == null || ctx.method().name().equals("GET") || ctx.method().name().equals("HEAD")) return;
        String host = ctx.header("Host");
        String originHost;
        try {
            URI u = URI.create(origin);
            originHost = u.getHost() + (u.getPort() >= 0 ? ":" + u.getPort() : "");
        } catch (IllegalArgumentException e) {
            originHost = null;
        }
        if (host == null || !host.equalsIgnoreCase(originHost)) {
            throw new ApiException(403, "requests from another origin (" + origin + ") may not change anything here");
        }
    }

    /**
     * On a loopback address a request naming another host came through a name that a site made point here (DNS
     * rebinding): its pages would count as this server's origin. Only loopback names are answered.
     */
    private void loopbackHostOnly(Context ctx) {
        if (!loopbackOnly) return;
        String host = ctx.header("Host");
        String name = host == null ? "" : host.replaceFirst(":\\d+$", "").toLowerCase(Locale.ROOT);
        if (!List.of("localhost", "127.0.0.1", "[::1]").contains(name) && !name.matches("127(\\.\\d{1,3}){3}")) {
            throw new ApiException(403, "this server answers requests to localhost only, not to '" + host + "'");
        }
    }

    /** Whether every address of {@code host} is a loopback one. */
    public static boolean isLoopback(String host) {
        try {
            for (java.net.InetAddress a : java.net.InetAddress.getAllByName(host)) {
                if (!a.isLoopbackAddress()) return false;
            }
            return true;
        } catch (java.net.UnknownHostException e) {
            throw new IllegalArgumentException("unknown host '" + host + "'");
        }
    }

    private Map<String, Object> health() {
        Map<String, Object> h = new LinkedHashMap<>();
        h.put("status", "ok");
        h.put("uptimeSeconds", Duration.between(started, Instant.now()).toSeconds());
        h.put("queued", queue.count(Job.State.QUEUED));
        h.put("running", queue.count(Job.State.RUNNING));
        h.put("residentMiB", Math.round(ProcessMemory.residentGiB() * 1024));
        h.put("listeners", events.listeners());
        return h;
    }

    private Map<String, Object> info() throws IOException {
        Map<String, Object> i = new LinkedHashMap<>();
        i.put("models", models.list());
        i.put("defaultModel", models.defaultName());
        i.put("schedulers", dev.perfusion.sampling.Schedulers.NAMES);
        i.put("defaults", Map.of("steps", 25, "guidance", 7.5, "scheduler", "ddim", "trainSteps", 200, "beta", Concept.GENERATION_BETA,
                "tau", Concept.GENERATION_TAU, "conceptStart", Concept.GENERATION_CONCEPT_START,
                "sideSteering", dev.perfusion.pipeline.SideSteering.DEFAULT_STRENGTH));
        Map<String, Object> l = new LinkedHashMap<>();
        l.put("steps", GenerateRequest.MAX_STEPS);
        l.put("count", GenerateRequest.MAX_COUNT);
        l.put("side", GenerateRequest.MAX_SIDE);
        l.put("trainSteps", TrainJob.MAX_TRAIN_STEPS);
        l.put("photos", limits.photos());
        l.put("photoBytes", limits.photoBytes());
        l.put("conceptBytes", limits.conceptBytes());
        l.put("requestBytes", limits.requestBytes());
        i.put("limits", l);
        return i;
    }

    private void submitGenerate(Context ctx) throws IOException {
        GenerateRequest given = json.readValue(ctx.bodyAsBytes(), GenerateRequest.class);
        if (given == null) throw ApiException.badRequest("the body is empty; send the generation as JSON");
        if (given.seed() != null) checkSeed(given.seed());
        GenerateRequest r = given.completed(models.defaultName(), random.nextInt(Integer.MAX_VALUE));
        r.checkSides(models.resolved(r.model()).vaeConfig().downsamplingFactor());
        for (GenerateRequest.ConceptChoice c : r.concepts()) library.get(c.name());
        String title = (r.sweep() != null ? "beta sweep: " : "") + r.prompt();
        @SuppressWarnings("unchecked")
        Map<String, Object> shown = json.convertValue(r, Map.class);
        Job job = queue.submit(queue.newId(), Job.Kind.GENERATE, title, shown, generate.work(r));
        send(ctx, 202, job.view());
    }

    private void submitTrain(Context ctx) throws IOException {
        checkLength(ctx);
        String word = required(ctx, "word"), supercategory = required(ctx, "supercategory");
        String model = ctx.formParam("model") == null || ctx.formParam("model").isBlank() ? models.defaultName() : ctx.formParam("model");
        if (model == null) throw ApiException.badRequest("model: the models folder has no model");
        Folder.checkName(model, "model");
        int steps = integer(ctx, "trainSteps", 200);
        int sampleEvery = integer(ctx, "sampleEvery", TrainJob.Plan.defaultSampleEvery(steps));
        long seed = checkSeed(wholeNumber(ctx, "seed", 1));
        String mask = ctx.formParam("mask") == null ? TrainingSettings.DEFAULT_MASK : ctx.formParam("mask");
        if (!List.of("none", "attention", "files").contains(mask)) throw ApiException.badRequest("mask: none, attention or files, got '" + mask + "'");
        boolean overwrite = "true".equals(ctx.formParam("overwrite"));
        String exampleSet = ctx.formParam("examples");
        List<UploadedFile> photos = ctx.uploadedFiles("photos"), masks = ctx.uploadedFiles("masks");
        if ((exampleSet == null) == photos.isEmpty()) throw ApiException.badRequest("give photos (files) or examples (a shipped set's name), one of the two");
        if (photos.size() > limits.photos() || masks.size() > limits.photos()) throw ApiException.badRequest("photos: at most " + limits.photos());
        if (mask.equals("files") == masks.isEmpty()) throw ApiException.badRequest("masks: send mask files with mask=files, and only then");

        String id = queue.newId();
        Path work = outputs.resolve(id);
        Path photoDir, maskDir = null;
        String from;
        try {
            if (exampleSet != null) {
                photoDir = examplesFolder().resolve(exampleSet);
                if (!Files.isDirectory(photoDir)) throw ApiException.notFound("no example set '" + exampleSet + "'");
                from = "examples/" + exampleSet;
            } else {
                photoDir = saveImages(photos, work.resolve("photos"));
                from = photos.size() + " uploaded";
            }
            if (!masks.isEmpty()) maskDir = saveImages(masks, work.resolve("masks"));
            TrainJob.Plan plan = new TrainJob.Plan(model, photoDir, maskDir, mask.equals("attention"), word, supercategory, steps, sampleEvery, seed,
                    overwrite, work);
            List<String> warnings = train.check(plan);
            Job job = queue.submit(id, Job.Kind.TRAIN, "train " + word + " (a kind of " + supercategory + ")", plan.shown(from),
                    train.work(plan, warnings));
            send(ctx, 202, job.view());
        } catch (RuntimeException | IOException e) {
            deleteTree(work); // a refused request leaves no folder behind
            throw e;
        }
    }

    /** Uploaded images into {@code dir}, each under a checked name and each read as an image (pixel count capped). */
    private Path saveImages(List<UploadedFile> files, Path dir) throws IOException {
        Files.createDirectories(dir);
        for (UploadedFile f : files) {
            String name = Folder.checkName(f.filename(), "the file name");
            if (f.size() > limits.photoBytes()) throw ApiException.tooLarge(name + ": a photo may have at most " + mib(limits.photoBytes()));
            Path target = dir.resolve(name);
            if (Files.exists(target)) throw ApiException.badRequest(name + ": two uploads of the same name");
            try (InputStream in = f.content()) {
                Files.copy(in, target);
            }
            try {
                TrainingImages.read(target);
            } catch (IOException e) {
                throw ApiException.badRequest(e.getMessage().replace(target.toString(), name));
            }
        }
        return dir;
    }

    private void uploadConcept(Context ctx) throws IOException {
        checkLength(ctx);
        UploadedFile file = ctx.uploadedFile("file");
        if (file == null) throw ApiException.badRequest("send the concept file as the form field 'file'");
        String name = ctx.formParam("name");
        if (name == null || name.isBlank()) {
            String given = file.filename();
            if (!given.endsWith(ConceptLibrary.EXTENSION)) throw ApiException.badRequest("the file name '" + given + "' does not end in .safetensors; give a name");
            name = ConceptLibrary.nameOf(given);
        }
        Folder.checkName(name, "the concept name");
        if (file.size() > limits.conceptBytes()) throw ApiException.tooLarge("a concept file may have at most " + mib(limits.conceptBytes()));
        try (InputStream in = file.content()) {
            send(ctx, 201, library.upload(name, in, limits.conceptBytes(), "true".equals(ctx.formParam("overwrite"))));
        }
    }

    private void cancel(Context ctx) {
        Job job = job(ctx);
        if (!queue.cancel(job)) throw ApiException.conflict("job " + job.id + " has already ended (" + job.state().name().toLowerCase(Locale.ROOT) + ")");
        send(ctx, 202, job.view());
    }

    private Job job(Context ctx) {
        String id = ctx.pathParam("id");
        return queue.get(id).orElseThrow(() -> ApiException.notFound("no job '" + id + "'"));
    }

    private List<Map<String, Object>> exampleSets() throws IOException {
        List<Map<String, Object>> sets = new ArrayList<>();
        if (examples == null) return sets;
        try (Stream<Path> s = Files.list(examples.root())) {
            for (Path set : s.filter(Files::isDirectory).sorted().toList()) {
                String name = set.getFileName().toString();
                if (!Folder.validName(name) || !examples.inside(name)) continue;
                List<String> urls = TrainingImages.list(set).stream().map(p -> p.getFileName().toString()).filter(f -> examples.inside(name, f))
                        .map(f -> "/api/examples/" + name + "/" + f).toList();
                sets.add(Map.of("name", name, "photos", urls));
            }
        }
        return sets;
    }

    private Folder examplesFolder() {
        if (examples == null) throw ApiException.notFound("this server has no example photos");
        return examples;
    }

    /** The URL of a file under the outputs folder (a job's sample picture), or null for any other. */
    private String outputUrl(Path file) {
        Path root = outputs.root(), p = file.toAbsolutePath().normalize();
        if (!p.startsWith(root)) return null;
        return "/api/outputs/" + root.relativize(p).toString().replace('\\', '/');
    }

    private void checkLength(Context ctx) {
        long length = ctx.contentLength();
        if (length > limits.requestBytes()) throw ApiException.tooLarge("the request has " + mib(length) + "; at most " + mib(limits.requestBytes()));
    }

    private static String mib(long bytes) {
        return String.format(Locale.ROOT, "%.1f MiB", bytes / 1048576.0);
    }

    private static String required(Context ctx, String field) {
        String v = ctx.formParam(field);
        if (v == null || v.isBlank()) throw ApiException.badRequest(field + ": required");
        return v.strip();
    }

    private static int integer(Context ctx, String field, int otherwise) {
        long v = wholeNumber(ctx, field, otherwise);
        if (v != (int) v) throw ApiException.badRequest(field + ": a whole number up to " + Integer.MAX_VALUE + ", got " + v);
        return (int) v;
    }

    private static long wholeNumber(Context ctx, String field, long otherwise) {
        String v = ctx.formParam(field);
        if (v == null || v.isBlank()) return otherwise;
        try {
            return Long.parseLong(v.strip());
        } catch (NumberFormatException e) {
            throw ApiException.badRequest(field + ": a whole number, got '" + v + "'");
        }
    }

    /** A seed the page can send and show back: JavaScript holds whole numbers exactly up to 2^53. */
    private static long checkSeed(long seed) {
        if (seed < 0 || seed > (1L << 53) - 1) throw ApiException.badRequest("seed: from 0 to 2^53-1 (a whole number JavaScript holds exactly), got " + seed);
        return seed;
    }

    private static boolean isTooLarge(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            String m = t.getMessage();
            if (m != null && (m.contains("size exceeded") || m.contains("exceeds max") || m.contains("too large") || m.contains("Too Large"))) return true;
        }
        return false;
    }

    /** Jetty's word for a request it could not parse (a broken multipart body), or null. */
    private static String badMessage(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof org.eclipse.jetty.http.BadMessageException b) return b.getReason() != null ? b.getReason() : "bad request";
        }
        return null;
    }

    private void send(Context ctx, int status, Object body) {
        try {
            ctx.status(status).contentType("application/json").result(json.writeValueAsString(body));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("a response could not be written as JSON", e);
        }
    }

    private void error(Context ctx, int status, String message) {
        discardUnreadBody(ctx);
        send(ctx, status, Map.of("error", message == null ? "error" : message, "status", status));
    }

    /**
     * Reads what is left of a refused request's body, so that the client, still sending it, reads the answer: a
     * server that answers and closes with the body unread resets the connection under the client, which then sees
     * no answer at all (whether it does depends on how much of the body had arrived: a race). Bodies more than a
     * request's limit past what was read are not worth reading: the connection closes on them (clients that send
     * {@code Expect: 100-continue}, as curl does for large bodies, get the answer before sending them).
     */
    private void discardUnreadBody(Context ctx) {
        long declared = ctx.contentLength();
        if (declared == 0 || "GET".equals(ctx.method().name()) || "HEAD".equals(ctx.method().name())) return;
        if (declared > 2 * limits.requestBytes()) {
            ctx.header("Connection", "close");
            return;
        }
        try {
            jakarta.servlet.ServletInputStream in = ctx.req().getInputStream();
            byte[] sink = new byte[64 << 10];
            long left = 2 * limits.requestBytes();
            for (int n; left > 0 && !in.isFinished() && (n = in.read(sink)) >= 0; ) left -= n;
        } catch (IOException | IllegalStateException e) {
            ctx.header("Connection", "close");  // the body cannot be read any more: the answer goes out, then the connection ends
        }
    }

    private static void sendFile(Context ctx, Path file) throws IOException {
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        String type = name.endsWith(".png") ? "image/png" : name.endsWith(".jpg") || name.endsWith(".jpeg") ? "image/jpeg"
                : name.endsWith(".gif") ? "image/gif" : name.endsWith(".bmp") ? "image/bmp" : "application/octet-stream";
        ctx.header("X-Content-Type-Options", "nosniff");
        ctx.contentType(type).result(Files.readAllBytes(file));
    }

    private static void deleteTree(Path dir) {
        if (!Files.exists(dir)) return;
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        } catch (IOException e) {
            // best effort: what stays is an empty job folder
        }
    }
}
