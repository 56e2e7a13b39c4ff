package dev.perfusion.cli;

import dev.perfusion.io.ImageGrid;
import dev.perfusion.io.Png;
import dev.perfusion.perfusion.AppliedConcepts;
import dev.perfusion.perfusion.BetaSweep;
import dev.perfusion.perfusion.ConceptFile;
import dev.perfusion.perfusion.ConceptGate;
import dev.perfusion.perfusion.CovarianceCache;
import dev.perfusion.training.ConceptTrainer;
import dev.perfusion.training.TrainingSettings;
import dev.perfusion.training.TrainingImages;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.pipeline.TextToImage;
import dev.perfusion.world.Bundled;
import dev.perfusion.world.HeldOut;
import dev.perfusion.world.Instance;
import dev.perfusion.world.Sample;
import dev.perfusion.world.WorldGenerator;
import org.bytedeco.pytorch.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "demo", mixinStandardHelpOptions = true,
        description = {"The whole mission on the bundled model, in a few minutes: learn 'my-teddy' from the shipped example",
                "pictures of a teddy the model never saw, draw it in several scenes at several beta values, and draw it",
                "together with a second shipped concept, 'my-cat'."})
final class DemoCommand implements Callable<Integer> {
    static final String WORD = "my-teddy", SUPERCATEGORY = "teddy";
    static final String SECOND_WORD = "my-cat", SECOND_SUPERCATEGORY = "cat";
    static final List<String> SCENES = List.of("a photo of a my-teddy", "a my-teddy on the beach", "a my-teddy in the snow",
            "a my-teddy at night", "a my-teddy in the city on the left", "a my-teddy next to a red car on the grass");
    static final List<Double> BETAS = List.of(0.5, 0.6, 0.7, 0.8);
    static final String TOGETHER = "a my-teddy on the left and a my-cat on the right on the grass";

    @Mixin ModelOptions model;
    @Option(names = "--out", defaultValue = "perfusion-demo", paramLabel = "DIR", description = "Where the concept and images go (default: ${DEFAULT-VALUE}).") Path out;
    @Option(names = "--steps", defaultValue = "400", description = "Concept training steps (default: ${DEFAULT-VALUE}).") int steps;
    @Option(names = "--sampling-steps", defaultValue = "25", description = "DDIM steps per image (default: ${DEFAULT-VALUE}).") int samplingSteps;
    @Option(names = "--guidance", defaultValue = "5", description = "(default: ${DEFAULT-VALUE})") double guidance;
    @Option(names = "--seed", defaultValue = "3", description = "(default: ${DEFAULT-VALUE})") long seed;
    @Option(names = "--write-bundle", hidden = true, description = "Maintainers: render the shipped example pictures and train the shipped second concept.") boolean writeBundle;

    @Override
    public Integer call() throws Exception {
        if (steps < 1) throw new IllegalArgumentException("--steps must be at least 1, got " + steps);
        if (samplingSteps < 1) throw new IllegalArgumentException("--sampling-steps must be at least 1, got " + samplingSteps);
        if (!(guidance >= 0)) throw new IllegalArgumentException("--guidance must be at least 0, got " + guidance);
        long started = System.nanoTime();
        TerminalProgress progress = new TerminalProgress(System.out);
        if (writeBundle) writeExamples();
        Path examples = Bundled.examples(WORD);
        List<Path> pictures = TrainingImages.list(examples);
        Files.createDirectories(out);
        StableDiffusion sd = model.load(progress);
        Tensor cInv = model.covarianceInverse(sd, CovarianceCache.DEFAULT_CAPTIONS, progress);
        if (writeBundle) {
            Path second = Bundled.concept(SECOND_WORD);
            Files.createDirectories(second.getParent());
            new ConceptTrainer(sd, cInv, SECOND_WORD, SECOND_SUPERCATEGORY, TrainingSettings.defaults().toBuilder().steps(steps).build())
                    .train(Bundled.examples(SECOND_WORD), null, second, false, null, progress);
        }

        long trainStart = System.nanoTime();
        Path concept = out.resolve(WORD + ".safetensors");
        ConceptTrainer.Result trained = new ConceptTrainer(sd, cInv, WORD, SUPERCATEGORY,
                TrainingSettings.defaults().toBuilder().steps(steps).schedule(0, 0).build()).train(examples, null, concept, false, null, progress);
        double trainSeconds = (System.nanoTime() - trainStart) / 1e9;

        long drawStart = System.nanoTime();
        int size = sd.unet.config().sampleSize() * sd.vaeScaleFactor();
        TextToImage.Request request = new TextToImage.Request(SCENES.get(0), "", guidance, samplingSteps, "ddim", size, size);
        ConceptFile mine = ConceptFile.load(concept);
        Path gridFile = out.resolve("grid.png"), togetherFile = out.resolve("together.png"), examplesFile = out.resolve("examples.png");
        try (AppliedConcepts applied = AppliedConcepts.apply(sd, cInv, List.of(new AppliedConcepts.Use(mine, mine.beta(), mine.tau())),
                ConceptGate.Orthogonalization.EXACT, false)) {
            BufferedImage grid = BetaSweep.grid(sd, applied, SCENES, BETAS, request, seed, progress);
            Png.write(gridFile, grid, Map.of("parameters", "demo: " + WORD + " by beta " + BETAS + ", seed " + seed));
        }
        Path secondFile = Bundled.concept(SECOND_WORD);
        ConceptFile second = ConceptFile.load(secondFile);
        second.checkFits(secondFile, sd.unetHash(), sd.textEncoderHash(), sd.textEncoder.config().hiddenSize(), AppliedConcepts.layerDims(sd), false);
        List<BufferedImage> together = new ArrayList<>();
        try (AppliedConcepts applied = AppliedConcepts.apply(sd, cInv, List.of(new AppliedConcepts.Use(mine, mine.beta(), mine.tau()),
                new AppliedConcepts.Use(second, second.beta(), second.tau())), ConceptGate.Orthogonalization.EXACT, false)) {
            TextToImage.Request r = new TextToImage.Request(TOGETHER, "", guidance, samplingSteps, "ddim", size, size);
            for (int k = 0; k < 4; k++) together.add(TextToImage.generate(sd, applied, r, seed + k, progress).image());
        }
        Png.write(togetherFile, ImageGrid.of(List.of(together), List.of(TOGETHER), List.of(), 128), Map.of("parameters", "demo: " + TOGETHER));
        List<BufferedImage> shown = new ArrayList<>();
        for (Path p : pictures) shown.add(TrainingImages.read(p));
        Png.write(examplesFile, ImageGrid.of(List.of(shown), List.of("the photos of " + WORD), List.of(), 128), Map.of());
        double drawSeconds = (System.nanoTime() - drawStart) / 1e9;

        System.out.printf(Locale.ROOT, "%nlearned '%s' (a kind of %s) from %d pictures in %s: %s (%,d bytes), loss on fixed batches %.4f -> %.4f%n",
                WORD, SUPERCATEGORY, pictures.size(), TerminalProgress.formatSeconds(trainSeconds), concept, Files.size(concept),
                trained.probeBefore(), trained.probeAfter());
        System.out.printf(Locale.ROOT, "drew %d scenes x %d betas and %s with '%s' in %s%n", SCENES.size(), BETAS.size(), WORD, SECOND_WORD,
                TerminalProgress.formatSeconds(drawSeconds));
        System.out.println("  " + examplesFile + "   the example pictures it learned from");
        System.out.println("  " + gridFile + "   scenes (rows) by beta (columns): lower beta = more of the concept, higher = more of the prompt");
        System.out.println("  " + togetherFile + "   \"" + TOGETHER + "\"");
        System.out.printf(Locale.ROOT, "demo done in %s%n", TerminalProgress.formatSeconds((System.nanoTime() - started) / 1e9));
        return 0;
    }

    /** Six pictures of each of two held-out instances, as the user's "photos". */
    private static void writeExamples() throws java.io.IOException {
        WorldGenerator world = new WorldGenerator();
        Map<String, Instance> instances = Map.of(WORD, HeldOut.instances().get(0), SECOND_WORD, HeldOut.instances().get(1));
        for (Map.Entry<String, Instance> e : instances.entrySet()) {
            Path dir = Bundled.examples(e.getKey());
            Files.createDirectories(dir);
            List<Sample> views = world.views(e.getValue(), 6, 42);
            for (int i = 0; i < views.size(); i++) {
                Png.write(dir.resolve(String.format(Locale.ROOT, "%02d.png", i + 1)), views.get(i).image(), Map.of("instance", e.getValue().id()));
            }
        }
    }
}
