package dev.perfusion.cli;

import dev.perfusion.demo.Demo;
import dev.perfusion.io.ImageGrid;
import dev.perfusion.io.Safetensors;
import dev.perfusion.io.layout.ModelSource;
import dev.perfusion.perfusion.AppliedConcepts;
import dev.perfusion.perfusion.ConceptFile;
import dev.perfusion.perfusion.ConceptGate;
import dev.perfusion.perfusion.CovarianceCache;
import dev.perfusion.pipeline.FormerRecipes;
import dev.perfusion.pipeline.SideSteering;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.pipeline.TextToImage;
import dev.perfusion.tensor.Ops;
import dev.perfusion.util.Progress;
import dev.perfusion.world.Bundled;
import dev.perfusion.world.BundledWorld;
import dev.perfusion.world.WorldCorpus;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** A short demo on the bundled model (few steps): every file it promises is there and well formed. */
class DemoCommandTest {
    @TempDir Path tmp;

    @Test
    void shortDemoWritesTheConceptAndItsImages() throws Exception {
        System.setProperty("perfusion.cache", tmp.resolve("cache").toString());
        Path out = tmp.resolve("demo");
        CliRun run = CliRun.of("demo", "--out", out.toString(), "--train-steps", "3", "--steps", "2");
        assertEquals(0, run.rc(), run.all());
        // the gate on the demo's prompts, pooled: six scene prompts of 32 positions, one the concept word
        assertTrue(run.out().matches("(?s).*the scene prompts, my-teddy: s at the concept word \\[[-0-9.]+(, [-0-9.]+){5}\\]; "
                + "elsewhere \\(186 positions\\) largest .*"), run.out());
        assertTrue(run.out().contains("the prompt with both, my-cat: s at the concept word ["), run.out());
        ConceptFile concept = ConceptFile.load(out.resolve("my-teddy.safetensors"));
        assertEquals("my-teddy", concept.word());
        assertEquals("teddy", concept.supercategory());
        BufferedImage grid = ImageIO.read(out.resolve("grid.png").toFile());
        int cell = 128;
        assertEquals(Demo.BETAS.size() * cell + cell, grid.getWidth(), "label column + one column per beta");
        assertEquals(Demo.SCENES.size() * cell + 24, grid.getHeight(), "header + one row per scene");
        assertTrue(Files.size(out.resolve("together.png")) > 1000);
        BufferedImage examples = ImageIO.read(out.resolve("examples.png").toFile());
        assertEquals(2 * cell, examples.getHeight(), "the photos, then the same through the model's VAE");
        assertThroughTheVaeBelowThePhotos(examples, cell);
        samePicturesAsTheFormerRecipe(out, concept, grid);
    }

    /** The second row is the first one through the bundled model's VAE: close to it, but not the same pixels. */
    private static void assertThroughTheVaeBelowThePhotos(BufferedImage examples, int cell) {
        int label = Math.max(120, cell);
        double sum = 0;
        long same = 0, n = 0;
        for (int y = 0; y < cell; y++) {
            for (int x = label; x < examples.getWidth(); x++) {
                int a = examples.getRGB(x, y), b = examples.getRGB(x, y + cell);
                for (int shift = 0; shift < 24; shift += 8) sum += Math.abs(((a >> shift) & 255) - ((b >> shift) & 255));
                if (a == b) same++;
                n++;
            }
        }
        double meanDiff = sum / (3.0 * n);
        assertTrue(meanDiff > 0.5 && meanDiff < 40, "mean abs difference per channel, photos against the VAE's: " + meanDiff);
        assertTrue(same < n / 2, "most pixels change through the VAE: " + same + " of " + n + " equal");
    }

    /**
     * On a model of one's own (here the bundled one with its UNet's weights scaled, so that its hash differs), the shipped
     * my-cat does not fit: the demo learns it from its shipped pictures for that model instead of failing at the last picture.
     */
    @Test
    void onAnotherModelTheDemoLearnsItsSecondConceptToo() throws Exception {
        System.setProperty("perfusion.cache", tmp.resolve("cache").toString());
        Path model = BundledWorld.copyOfModel(tmp.resolve("model"));
        Path unet = model.resolve("unet/diffusion_pytorch_model.safetensors");
        Safetensors weights = Safetensors.open(unet);
        Map<String, Tensor> scaled = new LinkedHashMap<>();
        for (String name : weights.entries().keySet()) scaled.put(name, weights.get(name).mul(new Scalar(1.001)));
        Safetensors.write(unet, scaled, Map.of("format", "pt"), Safetensors.StoredType.F16);

        Path out = tmp.resolve("demo");
        CliRun run = CliRun.of("demo", "--model", model.toString(), "--out", out.toString(), "--train-steps", "3", "--steps", "2");
        assertEquals(0, run.rc(), run.all());
        assertTrue(run.out().contains("the shipped my-cat was made for the bundled model; learning it for this model"), run.out());
        StableDiffusion sd = StableDiffusion.load(model, ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float, Progress.NONE);
        ConceptFile cat = ConceptFile.load(out.resolve("my-cat.safetensors"));
        assertEquals("cat", cat.supercategory());
        assertEquals(sd.unetHash(), cat.baseModelHash(), "learned for the model the demo ran on");
        assertNotEquals(ConceptFile.load(Bundled.concept(Demo.SECOND_WORD)).baseModelHash(), cat.baseModelHash());
        assertTrue(Files.size(out.resolve("together.png")) > 1000);
    }

    /** A step count the sampler refuses failed after the concept was trained: now before, with nothing written. */
    @Test
    void aStepCountTheSamplerRefusesFailsBeforeTraining() {
        System.setProperty("perfusion.cache", tmp.resolve("cache").toString());
        Path out = tmp.resolve("demo");
        CliRun run = CliRun.of("demo", "--out", out.toString(), "--train-steps", "3", "--steps", "1000");
        assertNotEquals(0, run.rc(), run.all());
        assertTrue(run.all().contains("1000 steps with steps_offset 1 put a timestep at"), run.all());
        assertFalse(Files.exists(out.resolve("my-teddy.safetensors")), "nothing trained: " + run.all());
    }

    /**
     * A shipped my-cat that cannot be read failed after the teddy's training; now it is learned from its pictures, as
     * for another model, saying why.
     */
    @Test
    void anUnreadableShippedSecondConceptIsLearnedFromItsPictures() throws Exception {
        System.setProperty("perfusion.cache", tmp.resolve("cache").toString());
        Path home = tmp.resolve("home"), models = Files.createDirectories(home.resolve("models"));
        try (var entries = Files.list(Bundled.home().resolve("models"))) {
            for (Path p : entries.toList()) {
                if (!p.getFileName().toString().equals("concepts")) Files.createSymbolicLink(models.resolve(p.getFileName().toString()), p.toAbsolutePath());
            }
        }
        Files.createDirectories(models.resolve("concepts"));
        Files.writeString(models.resolve("concepts/" + Demo.SECOND_WORD + ".safetensors"), "not a concept");
        String before = System.getProperty("perfusion.home");
        System.setProperty("perfusion.home", home.toString());
        try {
            Path out = tmp.resolve("demo");
            CliRun run = CliRun.of("demo", "--out", out.toString(), "--train-steps", "3", "--steps", "2");
            assertEquals(0, run.rc(), run.all());
            assertTrue(run.all().contains("the shipped my-cat cannot be used (not a readable concept file"), run.all());
            assertEquals("cat", ConceptFile.load(out.resolve("my-cat.safetensors")).supercategory());
            assertTrue(Files.size(out.resolve("together.png")) > 1000);
        } finally {
            if (before == null) System.clearProperty("perfusion.home");
            else System.setProperty("perfusion.home", before);
        }
    }

    /** The grid and the pictures together are, pixel for pixel, what the demo's own copy of the recipe drew. */
    private void samePicturesAsTheFormerRecipe(Path out, ConceptFile mine, BufferedImage grid) throws Exception {
        StableDiffusion sd = StableDiffusion.load(Bundled.model(), ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float, Progress.NONE);
        Tensor cInv = CovarianceCache.inverseFor(sd, WorldCorpus.world(), tmp.resolve("cache"), CovarianceCache.DEFAULT_CAPTIONS, Progress.NONE);
        ConceptFile second = ConceptFile.load(Bundled.concept(Demo.SECOND_WORD));
        try (AppliedConcepts applied = AppliedConcepts.apply(sd, cInv, List.of(new AppliedConcepts.Use(mine, mine.beta(), mine.tau())),
                ConceptGate.Orthogonalization.EXACT, false)) {
            // the first two scenes (rows) are enough to tell
            List<String> scenes = Demo.SCENES.subList(0, 2);
            List<List<BufferedImage>> cells = FormerRecipes.betaSweepCells(sd, applied, scenes, Demo.BETAS,
                    new TextToImage.Request(scenes.get(0), "", 5, 2, "ddim", 64, 64), 3);
            List<String> columns = Demo.BETAS.stream().map(b -> String.format(Locale.ROOT, "beta %.2f", b)).toList();
            BufferedImage expected = ImageGrid.of(cells, scenes, columns, 128);
            assertTrue(FormerRecipes.samePixels(expected, grid.getSubimage(0, 0, expected.getWidth(), expected.getHeight())), "grid.png");
        }
        try (AppliedConcepts applied = AppliedConcepts.apply(sd, cInv, List.of(new AppliedConcepts.Use(mine, mine.beta(), mine.tau()),
                new AppliedConcepts.Use(second, second.beta(), second.tau())), ConceptGate.Orthogonalization.EXACT, false)) {
            List<BufferedImage> together = FormerRecipes.demoTogether(sd, applied,
                    new TextToImage.Request(Demo.TOGETHER, "", 5, 2, "ddim", 64, 64).withSideSteering(SideSteering.DEFAULT_STRENGTH), 3, 4);
            BufferedImage expected = ImageGrid.of(List.of(together), List.of(Demo.TOGETHER), List.of(), 128);
            assertTrue(FormerRecipes.samePixels(expected, ImageIO.read(out.resolve("together.png").toFile())), "together.png");
        }
    }
}
