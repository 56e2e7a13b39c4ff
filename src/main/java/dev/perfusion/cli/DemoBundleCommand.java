package dev.perfusion.cli;

import dev.perfusion.perfusion.CovarianceFile;
import dev.perfusion.demo.DemoBundle;
import dev.perfusion.perfusion.CovarianceCache;
import dev.perfusion.pipeline.StableDiffusion;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "demo-bundle", mixinStandardHelpOptions = true,
        description = {"Maintainers: make the demo's shipped files again.",
                "Renders the example pictures of my-teddy and my-cat (models/examples/) from two held-out instances of the world,",
                "and trains the shipped my-cat concept (models/concepts/my-cat.safetensors) from its pictures. Run 'demo' after it."})
final class DemoBundleCommand implements Callable<Integer> {
    @Mixin ModelOptions model;
    @Option(names = "--train-steps", defaultValue = "400", description = "Training steps of the my-cat concept (default: ${DEFAULT-VALUE}).") int trainSteps;

    @Override
    public Integer call() throws Exception {
        model.checkPrecision();
        if (trainSteps < 1) throw new IllegalArgumentException("--train-steps must be at least 1, got " + trainSteps);
        long started = System.nanoTime();
        TerminalProgress progress = new TerminalProgress(System.out);
        StableDiffusion sd = model.load(progress);
        int size = sd.pictureSize(); // the photos at the model's own picture size
        for (Path dir : DemoBundle.writeExamples(size)) progress.message("wrote the example pictures (" + size + "x" + size + ") in " + dir);
        CovarianceFile.Loaded cInv = model.covariance(sd, CovarianceCache.DEFAULT_CAPTIONS, progress);
        progress.message("wrote " + DemoBundle.trainSecondConcept(sd, cInv, trainSteps, progress));
        progress.message(String.format(Locale.ROOT, "done in %s", TerminalProgress.formatSeconds((System.nanoTime() - started) / 1e9)));
        return 0;
    }
}
