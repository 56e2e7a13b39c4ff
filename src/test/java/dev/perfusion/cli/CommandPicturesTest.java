package dev.perfusion.cli;

import dev.perfusion.io.ImageGrid;
import dev.perfusion.io.Npy;
import dev.perfusion.io.Png;
import dev.perfusion.io.layout.ModelSource;
import dev.perfusion.perfusion.AppliedConcepts;
import dev.perfusion.perfusion.ConceptFile;
import dev.perfusion.perfusion.ConceptGate;
import dev.perfusion.perfusion.CovarianceCache;
import dev.perfusion.pipeline.FormerRecipes;
import dev.perfusion.pipeline.FormerRecipes.Drawn;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.pipeline.TextToImage.Request;
import dev.perfusion.tensor.Ops;
import dev.perfusion.util.Progress;
import dev.perfusion.world.Bundled;
import dev.perfusion.world.WorldCorpus;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.*;

/** What `generate` writes on the bundled model is, bit for bit, what its former recipe ({@link FormerRecipes}) drew. */
class CommandPicturesTest {
    @TempDir static Path tmp;
    static StableDiffusion sd;

    @BeforeAll
    static void load() throws Exception {
        sd = StableDiffusion.load(Bundled.model(), ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float, Progress.NONE);
    }

    @Test
    void generateWritesTheFormerPicturesAndLatents() throws Exception {
        Path out = tmp.resolve("plain"), latents = tmp.resolve("final.npy");
        List<String> prompts = List.of("a red car on the beach", "a white cat in the snow");
        assertEquals(0, Main.run("generate", "--prompt", prompts.get(0), "--prompt", prompts.get(1), "--negative-prompt", "a blue car",
                "--steps", "3", "--scheduler", "euler-a", "--seed", "7", "--count", "2", "--out", out.toString(),
                "--save-latents", latents.toString()));
        int i = 0;
        for (String prompt : prompts) {
            Request r = new Request(prompt, "a blue car", 7.5, 3, "euler-a", 64, 64);
            List<Drawn> before = FormerRecipes.generateCommand(sd, sd::encodePrompts, r, 7, 2, null);
            for (int k = 0; k < 2; k++, i++) {
                Path png = out.resolve(String.format(Locale.ROOT, "%05d-%d.png", i, 7 + k));
                assertTrue(FormerRecipes.samePixels(before.get(k).images().get(0), ImageIO.read(png.toFile())), png.toString());
                assertTrue(FormerRecipes.sameBits(before.get(k).latents(), Npy.read(tmp.resolve("final-" + i + ".npy")).floats()), "latents " + i);
            }
        }
    }

    @Test
    void generateRecordsEachConceptsGateAsApplied() throws Exception {
        System.setProperty("perfusion.cache", tmp.resolve("cache").toString());
        Path file = Bundled.concept("my-cat");
        ConceptFile cat = ConceptFile.load(file);
        Path defaults = tmp.resolve("file-gate.png"), given = tmp.resolve("given-tau.png");
        assertEquals(0, Main.run("generate", "--concept", file.toString(), "--prompt", "a my-cat", "--steps", "1", "--out", defaults.toString()));
        assertEquals(0, Main.run("generate", "--concept", file.toString(), "--prompt", "a my-cat", "--tau", "0.2", "--steps", "1",
                "--out", given.toString()));
        // no --beta or --tau: the file's own gate, not empty lists
        assertTrue(Png.readText(defaults).get("parameters").contains("Concept gate: beta [" + cat.beta() + "] tau [" + cat.tau() + "],"),
                Png.readText(defaults).get("parameters"));
        assertTrue(Png.readText(given).get("parameters").contains("Concept gate: beta [" + cat.beta() + "] tau [0.2],"),
                Png.readText(given).get("parameters"));
    }

    @Test
    void generateWithAConceptAndItsBetaSweepDrawTheFormerPictures() throws Exception {
        Path cache = tmp.resolve("cache");
        System.setProperty("perfusion.cache", cache.toString());
        Tensor cInv = CovarianceCache.inverseFor(sd, WorldCorpus.world(), cache, CovarianceCache.DEFAULT_CAPTIONS, Progress.NONE);
        Path file = Bundled.concept("my-cat");
        ConceptFile cat = ConceptFile.load(file);
        Path png = tmp.resolve("cat.png"), sweep = tmp.resolve("sweep.png");
        String prompt = "a my-cat on the grass on the left";
        // the former recipe steered no side ("on the left"): the command is asked not to either
        assertEquals(0, Main.run("generate", "--concept", file.toString(), "--beta", "0.6", "--prompt", prompt, "--side-steering", "0",
                "--steps", "2", "--guidance", "5", "--seed", "2", "--out", png.toString()));
        List<String> prompts = List.of("a my-cat in the snow", "a photo of a my-cat");
        assertEquals(0, Main.run("generate", "--concept", file.toString(), "--prompt", prompts.get(0), "--prompt", prompts.get(1),
                "--beta-sweep", "0.5,0.8", "--steps", "2", "--guidance", "5", "--scheduler", "euler-a", "--seed", "4", "--out", sweep.toString()));
        try (AppliedConcepts applied = AppliedConcepts.apply(sd, cInv, List.of(new AppliedConcepts.Use(cat, 0.6, cat.tau())),
                ConceptGate.Orthogonalization.EXACT, false)) {
            Drawn before = FormerRecipes.generateCommand(sd, applied, new Request(prompt, "", 5, 2, "ddim", 64, 64), 2, 1, null).get(0);
            assertTrue(FormerRecipes.samePixels(before.images().get(0), ImageIO.read(png.toFile())), "generate --concept");
        }
        try (AppliedConcepts applied = AppliedConcepts.apply(sd, cInv, List.of(new AppliedConcepts.Use(cat, cat.beta(), cat.tau())),
                ConceptGate.Orthogonalization.EXACT, false)) {
            List<Double> betas = List.of(0.5, 0.8);
            List<List<BufferedImage>> cells = FormerRecipes.betaSweepCells(sd, applied, prompts, betas,
                    new Request(prompts.get(0), "", 5, 2, "euler-a", 64, 64), 4);
            BufferedImage before = ImageGrid.of(cells, prompts, betas.stream().map(b -> String.format(Locale.ROOT, "beta %.2f", b)).toList(), 128);
            assertTrue(FormerRecipes.samePixels(before, ImageIO.read(sweep.toFile())), "generate --beta-sweep");
        }
    }
}
