package dev.perfusion.demo;

import dev.perfusion.perfusion.CovarianceFile;
import dev.perfusion.perfusion.ConceptGeneration;
import dev.perfusion.pipeline.SideSteering;
import dev.perfusion.io.ImageGrid;
import dev.perfusion.io.Png;
import dev.perfusion.perfusion.Concept;
import dev.perfusion.perfusion.ConceptFile;
import dev.perfusion.perfusion.GateProfile;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.pipeline.TextToImage;
import dev.perfusion.sampling.Schedulers;
import dev.perfusion.training.ConceptTrainer;
import dev.perfusion.training.TrainingImages;
import dev.perfusion.training.TrainingSettings;
import dev.perfusion.util.Progress;
import dev.perfusion.world.Bundled;
import org.bytedeco.pytorch.Tensor;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The whole mission on the bundled model: learn {@value #WORD} from the shipped example pictures of a teddy the
 * model never saw, draw it in several scenes at several beta values, and draw it together with the shipped second
 * concept, {@value #SECOND_WORD}.
 */
public final class Demo {
    public static final String WORD = "my-teddy", SUPERCATEGORY = "teddy";
    public static final String SECOND_WORD = "my-cat", SECOND_SUPERCATEGORY = "cat";
    public static final List<String> SCENES = List.of("a photo of a my-teddy", "a my-teddy on the beach", "a my-teddy in the snow",
            "a my-teddy at night", "a my-teddy in the city on the left", "a my-teddy next to a red car on the grass");
    public static final List<Double> BETAS = List.of(0.5, 0.6, 0.7, 0.8, 0.9);
    /** The label of the example pictures' second row: the same pictures through the model's VAE. */
    public static final String EXAMPLES_THROUGH_VAE = "the same through the model's VAE (the most it can draw)";
    public static final String TOGETHER = "a my-teddy on the left and a my-cat on the right on the grass";
    /** Pictures of the two concepts together, from seeds seed, seed+1, ... */
    private static final int TOGETHER_COUNT = 4;

    private Demo() {}

    /** Concept training steps; denoising steps (DDIM), guidance scale and seed of the pictures. */
    public record Settings(int trainSteps, int steps, double guidance, long seed) {}

    /**
     * What the demo wrote into its folder, and how the training went: the concept file, the example pictures it
     * learned from (and below them the same through the model's VAE), the scenes-by-beta grid, the two concepts together; seconds spent training and drawing.
     */
    public record Result(Path concept, List<Path> pictures, ConceptTrainer.Result trained, double trainSeconds,
                         Path examples, Path grid, Path together, double drawSeconds, List<String> gate) {}

    /** The shipped pictures the demo learns from; listed before the model loads, so that a missing one fails early. */
    public static List<Path> examplePictures() throws IOException {
        return TrainingImages.list(Bundled.examples(WORD));
    }

    /** Runs the demo on {@code sd} (the bundled model) with its input covariance's inverse, writing into {@code out}. */
    public static Result run(StableDiffusion sd, CovarianceFile.Loaded cInv, Settings settings, Path out, Progress progress) throws IOException {
        List<Path> pictures = examplePictures();
        // what would fail after the training fails before it: a step count the sampler refuses, the second concept
        Schedulers.create(Schedulers.Kind.DDIM.id, sd.schedulerConfig).setTimesteps(settings.steps());
        Path shippedSecond = shippedSecondConcept(sd, progress);
        Files.createDirectories(out);
        long trainStart = System.nanoTime();
        Path concept = out.resolve(WORD + ".safetensors");
        ConceptTrainer.Result trained = learn(sd, cInv, WORD, SUPERCATEGORY, settings, concept, progress);
        double trainSeconds = secondsSince(trainStart);
        Path secondFile = shippedSecond;
        if (secondFile == null) {
            secondFile = out.resolve(SECOND_WORD + ".safetensors");
            learn(sd, cInv, SECOND_WORD, SECOND_SUPERCATEGORY, settings, secondFile, progress);
        }

        long drawStart = System.nanoTime();
        ConceptFile mine = ConceptFile.load(concept);
        Path gridFile = out.resolve("grid.png"), togetherFile = out.resolve("together.png"), examplesFile = out.resolve("examples.png");
        ConceptGeneration.Settings drawing = new ConceptGeneration.Settings("", settings.guidance(), settings.steps(), Schedulers.Kind.DDIM.id,
                0, 0, false, false, Concept.GENERATION_CONCEPT_START, SideSteering.DEFAULT_STRENGTH);
        ConceptGeneration.Choice myConcept = new ConceptGeneration.Choice(concept, mine, null, null);
        try (ConceptGeneration generation = ConceptGeneration.open(sd, List.of(myConcept), drawing, false, () -> cInv, progress)) {
            ConceptGeneration.Picture grid = generation.sweep(SCENES, BETAS, settings.seed());
            Png.write(gridFile, grid.image(), grid.pngText());
        }
        ConceptFile second = ConceptFile.load(secondFile);
        List<BufferedImage> together = new ArrayList<>();
        try (ConceptGeneration generation = ConceptGeneration.open(sd, List.of(myConcept, new ConceptGeneration.Choice(secondFile, second, null, null)),
                drawing, false, () -> cInv, progress)) {
            for (int k = 0; k < TOGETHER_COUNT; k++) together.add(generation.draw(TOGETHER, settings.seed() + k).image());
        }
        Png.write(togetherFile, ImageGrid.of(List.of(together), List.of(TOGETHER), List.of(), 128), Map.of("parameters", "demo: " + TOGETHER));
        List<BufferedImage> shown = new ArrayList<>();
        for (Path p : pictures) shown.add(TrainingImages.read(p));
        // the second row is the ceiling of every picture the model draws: what its decoder keeps of the photos
        Png.write(examplesFile, ImageGrid.of(List.of(shown, TextToImage.throughVae(sd, shown)),
                List.of("the photos of " + WORD, EXAMPLES_THROUGH_VAE), List.of(), 128), Map.of());
        return new Result(concept, pictures, trained, trainSeconds, examplesFile, gridFile, togetherFile, secondsSince(drawStart),
                gate(sd, cInv.cInv(), mine, second));
    }

    /** Learns {@code word} from its shipped example pictures into {@code file}, with the demo's training steps. */
    private static ConceptTrainer.Result learn(StableDiffusion sd, CovarianceFile.Loaded cInv, String word, String supercategory,
                                               Settings settings, Path file, Progress progress) throws IOException {
        return new ConceptTrainer(sd, cInv.cInv(), cInv.provenance(), word, supercategory,
                TrainingSettings.defaults().toBuilder().steps(settings.trainSteps()).schedule(0, 0).build())
                .train(Bundled.examples(word), null, file, false, null, progress);
    }

    /**
     * The shipped {@value #SECOND_WORD}, where it was made for this model and can be read; null where it is to be learned
     * here from its shipped pictures as {@value #WORD} is (the demo on a model of one's own), which are then checked
     * to be there: known before the training, not at the last picture.
     */
    private static Path shippedSecondConcept(StableDiffusion sd, Progress progress) throws IOException {
        Path shipped = Bundled.concept(SECOND_WORD);
        try {
            ConceptFile.load(shipped).checkMadeFor(shipped, sd.unetHash(), sd.textEncoderHash(), sd.clipSkip());
            return shipped;
        } catch (ConceptFile.MadeForAnotherModel e) {
            progress.message("the shipped " + SECOND_WORD + " was made for the bundled model; learning it for this model from its "
                    + "pictures (" + Bundled.examples(SECOND_WORD) + "); " + e.getMessage());
        } catch (IOException | IllegalArgumentException e) {
            progress.message("the shipped " + SECOND_WORD + " cannot be used (" + e.getMessage() + "); learning it from its pictures ("
                    + Bundled.examples(SECOND_WORD) + ")");
        }
        TrainingImages.list(Bundled.examples(SECOND_WORD));
        return null;
    }

    /**
     * Where the gate opens on the demo's prompts (GateProfile): s of the concept at its word and at every other
     * position of the scene prompts, then of each concept on the prompt with both.
     */
    private static List<String> gate(StableDiffusion sd, Tensor cInv, ConceptFile mine, ConceptFile second) {
        List<GateProfile> scenes = new ArrayList<>();
        for (String prompt : SCENES) scenes.add(GateProfile.of(sd, cInv, List.of(mine), prompt));
        GateProfile together = GateProfile.of(sd, cInv, List.of(mine, second), TOGETHER);
        return List.of("the scene prompts, " + GateProfile.summary(scenes, 0), "the prompt with both, " + together.summary(0),
                "the prompt with both, " + together.summary(1));
    }

    private static double secondsSince(long t0) { return (System.nanoTime() - t0) / 1e9; }
}
