package dev.perfusion.cli;

import dev.perfusion.server.PerfusionServer;
import dev.perfusion.world.Bundled;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Stream;

@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"A local web app to generate, steer and train concepts.",
                "Generate with beta sliders and sweeps, train concepts with live progress, manage the concept library, in the browser.",
                "A REST API under /api serves scripts too (see the README). There is no authentication: it listens on "
                        + "127.0.0.1 unless --host says otherwise."})
final class ServeCommand implements Callable<Integer> {
    @Option(names = "--host", defaultValue = "127.0.0.1",
            description = "The address to listen on; any but a loopback one lets other machines in, unauthenticated (default: ${DEFAULT-VALUE}).")
    String host;
    @Option(names = "--port", defaultValue = "7860", description = "The port; 0 takes a free one (default: ${DEFAULT-VALUE}).") int port;
    @Option(names = "--models", paramLabel = "DIR",
            description = "Folder of models: diffusers folders and single-file checkpoints (default: the project's models/, with the bundled model).")
    Path models;
    @Option(names = "--concepts", paramLabel = "DIR", defaultValue = "perfusion-serve/concepts",
            description = "The concept library; a new one starts with the shipped concepts (my-cat) (default: ${DEFAULT-VALUE}).")
    Path concepts;
    @Option(names = "--outputs", paramLabel = "DIR", defaultValue = "perfusion-serve/outputs",
            description = "Where pictures and training runs go, a folder per job (default: ${DEFAULT-VALUE}).")
    Path outputs;
    @Option(names = "--device", defaultValue = "cpu", paramLabel = "DEVICE", converter = Choices.Device.class,
            completionCandidates = Choices.Device.class,
            description = "Where the model runs: ${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE}).")
    ModelOptions.DeviceName device;

    @Override
    public Integer call() throws Exception {
        if (port < 0 || port > 65535) throw new IllegalArgumentException("--port must be in 0..65535, got " + port);
        boolean loopback = Flags.named("--host", () -> PerfusionServer.isLoopback(host));
        Path modelsDir = models != null ? models : Bundled.home().resolve("models");
        if (!Files.isDirectory(modelsDir)) throw new IOException("--models " + modelsDir + ": no such folder");
        seedConcepts(concepts); // a new library starts with the shipped concepts: before the check makes the folder
        FileChecks.writableFolder(concepts);
        FileChecks.writableFolder(outputs);
        PerfusionServer server = PerfusionServer.start(new PerfusionServer.Settings(host, port, modelsDir, concepts, outputs,
                Bundled.home().resolve("models/examples"), ModelOptions.torchDevice(device), ModelOptions.dtype(device, ModelOptions.PrecisionName.AUTO),
                PerfusionServer.Limits.DEFAULT));
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.close();
            stopped.countDown();
        }, "perfusion-serve-stop"));
        String shown = host.contains(":") ? "[" + host + "]" : host;
        System.out.println("perfusion serve: http://" + shown + ":" + server.port() + "/  (models " + modelsDir + ", concepts " + concepts
                + ", outputs " + outputs + "; Ctrl-C stops)");
        if (!loopback) {
            System.out.println("warning: listening on " + host + ": anyone who can reach this address can generate, train, upload and "
                    + "delete concepts; there is no authentication");
        }
        stopped.await();
        return 0;
    }

    /** A concept library made here starts with the concepts shipped with the project. */
    private static void seedConcepts(Path dir) throws IOException {
        if (Files.exists(dir)) return;
        Files.createDirectories(dir);
        Path shipped = Bundled.home().resolve("models/concepts");
        if (!Files.isDirectory(shipped)) return;
        try (Stream<Path> s = Files.list(shipped)) {
            for (Path p : s.filter(f -> f.getFileName().toString().endsWith(".safetensors")).toList()) {
                Files.copy(p, dir.resolve(p.getFileName()));
            }
        }
    }

}
