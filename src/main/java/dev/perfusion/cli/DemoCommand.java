package dev.perfusion.cli;

import dev.perfusion.perfusion.CovarianceFile;
import dev.perfusion.demo.Demo;
import dev.perfusion.perfusion.CovarianceCache;
import dev.perfusion.pipeline.StableDiffusion;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "demo", mixinStandardHelpOptions = true,
        description = {"Learn my-teddy from the shipped photos and draw it.",
                "The whole mission on the bundled model, in a few minutes: learn 'my-teddy' from the shipped example pictures "
                        + "of a teddy the model never saw, draw it in several scenes at several beta values, and draw it together "
                        + "with a second shipped concept, 'my-cat'."})
final class DemoCommand implements Callable<Integer> {
    @Mixin ModelOptions model;
    @Option(names = "--out", defaultValue = "perfusion-demo", paramLabel = "DIR", description = "Where the concept and images go (default: ${DEFAULT-VALUE}).") Path out;
    @Option(names = "--train-steps", defaultValue = "400", description = "Training steps of the concept (default: ${DEFAULT-VALUE}).") int trainSteps;
    @Option(names = "--steps", defaultValue = "25", description = "Denoising (DDIM) steps per picture (default: ${DEFAULT-VALUE}).") int steps;
    @Option(names = "--guidance", defaultValue = "5", description = "Classifier-free guidance scale (default: ${DEFAULT-VALUE}).") double guidance;
    @Option(names = "--seed", defaultValue = "3", description = "Seed of every picture's initial noise (default: ${DEFAULT-VALUE}).") long seed;

    @Override
    public Integer call() throws Exception {
        model.checkPrecision();
        if (trainSteps < 1) throw new IllegalArgumentException("--train-steps must be at least 1, got " + trainSteps);
        if (steps < 1) throw new IllegalArgumentException("--steps must be at least 1, got " + steps);
        if (!(guidance >= 0)) throw new IllegalArgumentException("--guidance must be at least 0, got " + guidance);
        long started = System.nanoTime();
        TerminalProgress progress = new TerminalProgress(System.out);
        Demo.examplePictures();
        FileChecks.writableFolder(out);
        StableDiffusion sd = model.load(progress);
        CovarianceFile.Loaded cInv = model.covariance(sd, CovarianceCache.DEFAULT_CAPTIONS, progress);
        Demo.Result r = Demo.run(sd, cInv, new Demo.Settings(trainSteps, steps, guidance, seed), out, progress);

        System.out.printf(Locale.ROOT, "%nlearned '%s' (a kind of %s) from %d pictures in %s: %s (%,d bytes), loss on fixed batches %.4f -> %.4f%n",
                Demo.WORD, Demo.SUPERCATEGORY, r.pictures().size(), TerminalProgress.formatSeconds(r.trainSeconds()), r.concept(),
                Files.size(r.concept()), r.trained().probeBefore(), r.trained().probeAfter());
        System.out.printf(Locale.ROOT, "drew %d scenes x %d betas and %s with '%s' in %s%n", Demo.SCENES.size(), Demo.BETAS.size(), Demo.WORD,
                Demo.SECOND_WORD, TerminalProgress.formatSeconds(r.drawSeconds()));
        System.out.println("  " + r.examples() + "   the example pictures it learned from, and below them the most the model can draw of them (through its VAE)");
        System.out.println("  " + r.grid() + "   scenes (rows) by beta (columns): lower beta = more of the concept, higher = more of the prompt");
        System.out.println("  " + r.together() + "   \"" + Demo.TOGETHER + "\"");
        System.out.println("where the gate opens (s = 1: the concept's own input; the gate opens above beta):");
        for (String line : r.gate()) System.out.println("  " + line);
        System.out.printf(Locale.ROOT, "demo done in %s%n", TerminalProgress.formatSeconds((System.nanoTime() - started) / 1e9));
        return 0;
    }
}
