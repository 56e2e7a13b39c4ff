package dev.perfusion.demo;

import dev.perfusion.perfusion.CovarianceFile;
import dev.perfusion.io.AtomicFiles;
import dev.perfusion.io.Png;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.training.ConceptTrainer;
import dev.perfusion.training.TrainingSettings;
import dev.perfusion.util.Progress;
import dev.perfusion.world.Bundled;
import dev.perfusion.world.HeldOut;
import dev.perfusion.world.Instance;
import dev.perfusion.world.Sample;
import dev.perfusion.world.WorldGenerator;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The files the demo ships with, made again: six pictures of each of two held-out instances of the world (the
 * user's "photos" of {@value Demo#WORD} and {@value Demo#SECOND_WORD}), and the {@value Demo#SECOND_WORD} concept
 * trained from its pictures on the bundled model.
 */
public final class DemoBundle {
    private static final int PICTURES = 6;
    private static final long VIEW_SEED = 42;

    private DemoBundle() {}

    /** Renders the example pictures, {@code size} pixels square, into the bundled examples folders; returns the folders. */
    public static List<Path> writeExamples(int size) throws IOException {
        WorldGenerator world = new WorldGenerator(size);
        Map<String, Instance> instances = Map.of(Demo.WORD, HeldOut.instances().get(0), Demo.SECOND_WORD, HeldOut.instances().get(1));
        for (Map.Entry<String, Instance> e : instances.entrySet()) {
            // the set is replaced whole: pictures of the set before (another count) would be trained on with the new ones
            Path dir = Bundled.examples(e.getKey());
            Path staging = Files.createTempDirectory(Files.createDirectories(dir.toAbsolutePath().getParent()), "." + dir.getFileName() + "-");
            List<Sample> views = world.views(e.getValue(), PICTURES, VIEW_SEED);
            for (int i = 0; i < views.size(); i++) {
                Png.write(staging.resolve(String.format(Locale.ROOT, "%02d.png", i + 1)), views.get(i).image(), Map.of("instance", e.getValue().id()));
            }
            AtomicFiles.replaceFolder(staging, dir);
        }
        return List.of(Bundled.examples(Demo.WORD), Bundled.examples(Demo.SECOND_WORD));
    }

    /** Trains the shipped second concept from its example pictures; returns its file. */
    public static Path trainSecondConcept(StableDiffusion sd, CovarianceFile.Loaded cInv, int trainSteps, Progress progress) throws IOException {
        Path second = Bundled.concept(Demo.SECOND_WORD);
        Files.createDirectories(second.getParent());
        new ConceptTrainer(sd, cInv.cInv(), cInv.provenance(), Demo.SECOND_WORD, Demo.SECOND_SUPERCATEGORY, TrainingSettings.defaults().toBuilder().steps(trainSteps).schedule(0, 0).build())
                .train(Bundled.examples(Demo.SECOND_WORD), null, second, false, null, progress);
        return second;
    }
}
