package dev.perfusion.perfusion;

import dev.perfusion.io.layout.ModelSource;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.pipeline.TextToImage;
import dev.perfusion.tensor.Ops;
import dev.perfusion.util.Progress;
import dev.perfusion.world.Bundled;
import dev.perfusion.world.WorldCorpus;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The one text-to-image recipe with concepts, as generate and the web app's jobs run it, on the bundled model. */
class ConceptGenerationTest {
    private static final ConceptGeneration.Settings SETTINGS = new ConceptGeneration.Settings("", 5, 2, "ddim", 0, 0, false, false, 0, 0);
    private static StableDiffusion sd;
    private static ConceptFile cat;

    @BeforeAll
    static void load() throws IOException {
        sd = StableDiffusion.load(Bundled.model(), ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float, Progress.NONE);
        cat = ConceptFile.load(Bundled.concept("my-cat"));
    }

    @Test
    void withoutConceptsItDrawsWhatTextToImageDrawsAndNeverAsksForCInv() throws IOException {
        try (ConceptGeneration g = ConceptGeneration.open(sd, List.of(), SETTINGS, false, () -> fail("no concept needs C^-1"), Progress.NONE)) {
            int size = sd.unet.config().sampleSize() * sd.vaeScaleFactor();
            assertEquals(size, g.width(), "0 is the model's native size");
            ConceptGeneration.Picture p = g.draw("a cat on the beach", 3);
            BufferedImage direct = TextToImage.generate(sd, new TextToImage.Request("a cat on the beach", "", 5, 2, "ddim", size, size), 3,
                    Progress.NONE).image();
            assertArrayEquals(pixels(direct), pixels(p.image()));
            assertEquals("3", p.parameters().seed());
            assertTrue(p.parameters().concepts().isEmpty());
            assertEquals(p.parameters().text(), p.pngText().get("parameters"));
            assertThrows(IllegalArgumentException.class, () -> g.sweep(List.of("a cat"), List.of(0.5), 1), "a sweep needs a concept");
        }
    }

    /** A step count the sampler refuses fails before C^-1 is asked for (on a first run, minutes over a caption corpus). */
    @Test
    void theSamplersRefusalComesBeforeCInv() {
        ConceptGeneration.Settings tooMany = new ConceptGeneration.Settings("", 5, 5000, "ddim", 0, 0, false, false, 0, 0);
        assertThrows(IllegalArgumentException.class, () -> ConceptGeneration.open(sd, List.of(new ConceptGeneration.Choice(Bundled.concept("my-cat"),
                cat, null, null)), tooMany, false, () -> fail("C^-1 asked before the steps were checked"), Progress.NONE));
        var e = assertThrows(IllegalArgumentException.class, () -> new ConceptGeneration.Settings("blurry", 1, 5, "ddim", 0, 0, false, false, 0, 0));
        assertTrue(e.getMessage().startsWith("a negative prompt acts through classifier-free guidance, which is off at guidance 1.0"), e.getMessage());
    }

    @Test
    void aConceptIsAppliedWithItsFilesGateUnlessGivenAndTheModelIsRestored() throws IOException {
        BufferedImage before = TextToImage.generate(sd, request("a my-cat on the beach"), 5, Progress.NONE).image();
        List<String> said = new ArrayList<>();
        Progress messages = recording(said);
        Path file = Path.of("cats", "my-cat.safetensors");
        ConceptFile trainedElsewhere = new ConceptFile(cat.word(), cat.supercategory(), cat.embedding(), cat.iStar(), cat.edit(), cat.beta(),
                cat.tau(), cat.baseModelHash(), cat.textEncoderHash(), java.util.Map.of(ConceptFile.COVARIANCE_SETTING, "another run's"));
        try (ConceptGeneration g = ConceptGeneration.open(sd, List.of(new ConceptGeneration.Choice(file, trainedElsewhere, null, 0.2)), SETTINGS, false,
                () -> cInv("a test's"), messages)) {
            ConceptGeneration.Picture p = g.draw("a my-cat on the beach", 5);
            assertEquals(List.of(new dev.perfusion.pipeline.GenerationParameters.AppliedGate("my-cat.safetensors", cat.beta(), 0.2)),
                    p.parameters().concepts(), "the file's beta, the given tau");
            assertFalse(java.util.Arrays.equals(pixels(before), pixels(p.image())), "the concept changes the picture");
            g.draw("a cat on the beach", 5);
            g.draw("a cat on the beach", 6);
            assertEquals(1, said.stream().filter(m -> m.contains("\"a cat on the beach\" does not contain the concept word 'my-cat'")).count(), said.toString());
            String longPrompt = "a cat" + " and a dog".repeat(12) + " and a my-cat";
            g.draw(longPrompt, 5);
            assertTrue(said.contains("warning: the concept word 'my-cat' comes after the first " + (sd.tokenizer.maxLength() - 2)
                    + " tokens of the prompt \"" + longPrompt + "\", which are all the model reads: the concept has no effect on it; name it earlier in the prompt"),
                    "a word cut from the end is no absent word: " + said);
            assertTrue(said.stream().anyMatch(m -> m.equals("warning: cats/my-cat.safetensors: concept 'my-cat' was trained with C^-1 from another run's; this run uses a test's"
                    + " (the C^-1 it was trained with gives the same as training)")), said.toString());
            ConceptGeneration.Picture sweep = g.sweep(List.of("a my-cat"), List.of(0.5, 0.9), 5);
            assertTrue(sweep.text().startsWith("Beta sweep: [0.5, 0.9] of [my-cat.safetensors]\na my-cat\n"), sweep.text());
        }
        assertArrayEquals(pixels(before), pixels(TextToImage.generate(sd, request("a my-cat on the beach"), 5, Progress.NONE).image()),
                "closing restores the model");
    }

    /** A baseline's concept (textual inversion here) has no gate: a beta given for it, or swept, changed nothing, silently. */
    @Test
    void aBetaForAConceptWithoutAGateIsSaidToChangeNothing() throws IOException {
        ConceptFile embeddingOnly = new ConceptFile(cat.word(), cat.supercategory(), cat.embedding(), cat.iStar(), ProjectionEdit.none(), cat.beta(),
                cat.tau(), cat.baseModelHash(), cat.textEncoderHash(), cat.settings());
        List<String> said = new ArrayList<>();
        try (ConceptGeneration g = ConceptGeneration.open(sd, List.of(new ConceptGeneration.Choice(Path.of("ti.safetensors"), embeddingOnly, 0.6, null)),
                SETTINGS, false, () -> cInv("a test's"), recording(said))) {
            assertTrue(said.contains("warning: ti.safetensors: concept 'my-cat' (edit none) has no gate, so beta and tau change nothing in it"), said.toString());
        }
        said.clear();
        ConceptFile ungated = new ConceptFile(cat.word(), cat.supercategory(), cat.embedding(), cat.iStar(),
                new ProjectionEdit(ProjectionEdit.Kind.RANK_ONE, cat.edit().keys(), cat.edit().values()), cat.beta(), cat.tau(),
                cat.baseModelHash(), cat.textEncoderHash(), cat.settings());
        try (ConceptGeneration g = ConceptGeneration.open(sd, List.of(new ConceptGeneration.Choice(Path.of("rome.safetensors"), ungated, null, null)),
                SETTINGS, false, () -> cInv("a test's"), recording(said))) {
            g.sweep(List.of("a my-cat"), List.of(0.5, 0.9), 5);
            assertTrue(said.contains("warning: none of the concepts has a gate, so every beta draws the same picture"), said.toString());
        }
        said.clear();
        try (ConceptGeneration g = ConceptGeneration.open(sd, List.of(new ConceptGeneration.Choice(Path.of("cat.safetensors"), cat, 0.6, null)),
                SETTINGS, false, () -> cInv("a test's"), recording(said))) {
            g.sweep(List.of("a my-cat"), List.of(0.5, 0.9), 5);
            assertTrue(said.stream().noneMatch(m -> m.contains("gate")), "Perfusion's concept has one: " + said);
        }
    }

    /** Global key locking of concepts without a rank-one edit changed nothing, silently, while the picture recorded it. */
    @Test
    void globalLockingOfConceptsWithoutARankOneEditIsSaidAndNotRecorded() throws IOException {
        ConceptFile embeddingOnly = new ConceptFile(cat.word(), cat.supercategory(), cat.embedding(), cat.iStar(),
                new ProjectionEdit(ProjectionEdit.Kind.NONE, List.of(), List.of()), cat.beta(), cat.tau(),
                cat.baseModelHash(), cat.textEncoderHash(), cat.settings());
        ConceptGeneration.Settings locked = new ConceptGeneration.Settings("", 5, 2, "ddim", 0, 0, true, false, 0, 0);
        List<String> said = new ArrayList<>();
        try (ConceptGeneration g = ConceptGeneration.open(sd, List.of(new ConceptGeneration.Choice(Path.of("ti.safetensors"), embeddingOnly, null, null)),
                locked, false, () -> cInv("a test's"), recording(said))) {
            assertTrue(said.contains("warning: global key locking locks the keys of rank-one edits, and none of these concepts has one (my-cat: none), "
                    + "so it changes nothing"), said.toString());
            assertFalse(g.draw("a my-cat", 3).text().contains("global lock"), "the picture does not claim a lock");
        }
        said.clear();
        try (ConceptGeneration g = ConceptGeneration.open(sd, List.of(new ConceptGeneration.Choice(Path.of("cat.safetensors"), cat, null, null)),
                locked, false, () -> cInv("a test's"), recording(said))) {
            assertTrue(said.stream().noneMatch(m -> m.contains("global key locking")), said.toString());
            assertTrue(g.draw("a my-cat", 3).text().contains("global lock"), "Perfusion's concept is locked");
        }
    }

    @Test
    void aConceptOfAnotherModelIsRefusedUnlessForcedAndTheForcedOneIsNamed() throws IOException {
        ConceptFile other = new ConceptFile(cat.word(), cat.supercategory(), cat.embedding(), cat.iStar(), cat.edit(), cat.beta(), cat.tau(),
                "another-unet", cat.textEncoderHash(), java.util.Map.of());
        List<ConceptGeneration.Choice> choices = List.of(new ConceptGeneration.Choice(Path.of("other.safetensors"), other, null, null));
        ConceptFile.MadeForAnotherModel e = assertThrows(ConceptFile.MadeForAnotherModel.class,
                () -> ConceptGeneration.open(sd, choices, SETTINGS, false, () -> fail("refused before C^-1"), Progress.NONE));
        assertTrue(e.getMessage().startsWith("other.safetensors: concept 'my-cat' was made for another base model"), e.getMessage());
        List<String> said = new ArrayList<>();
        Progress messages = recording(said);
        try (ConceptGeneration g = ConceptGeneration.open(sd, choices, SETTINGS, true,
                () -> cInv("the cache's"), messages)) {
            assertEquals(1, said.size(), said.toString());
            assertTrue(said.get(0).startsWith("warning: other.safetensors: concept 'my-cat' was made for another UNet (its hash another-unet"), said.get(0));
        }
    }

    private static Progress recording(List<String> messages) {
        return new Progress() {
            @Override public void update(String task, long done, long total, String detail) {}
            @Override public void message(String text) { messages.add(text); }
        };
    }

    /** The model's C^-1 from the cache, under another provenance than the one my-cat was trained with. */
    private static CovarianceFile.Loaded cInv(String provenance) throws IOException {
        return new CovarianceFile.Loaded(CovarianceCache.inverseFor(sd, WorldCorpus.forModel(Bundled.model()), CovarianceCache.defaultDir(),
                CovarianceCache.DEFAULT_CAPTIONS, Progress.NONE), provenance);
    }

    private static TextToImage.Request request(String prompt) {
        int size = sd.unet.config().sampleSize() * sd.vaeScaleFactor();
        return new TextToImage.Request(prompt, "", 5, 2, "ddim", size, size);
    }

    private static int[] pixels(BufferedImage image) {
        return image.getRGB(0, 0, image.getWidth(), image.getHeight(), null, 0, image.getWidth());
    }
}
