package dev.perfusion.pipeline;

import dev.perfusion.perfusion.AppliedConcepts;
import dev.perfusion.pipeline.FormerRecipes.Drawn;
import dev.perfusion.pipeline.TextToImage.Generated;
import dev.perfusion.pipeline.TextToImage.Request;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.util.Progress;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import java.awt.image.BufferedImage;
import java.util.List;

import static dev.perfusion.pipeline.FormerRecipes.samePixels;
import static dev.perfusion.pipeline.FormerRecipes.sameBits;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The one text-to-image call draws, bit for bit, the pictures each command drew with its own copy of the recipe
 * ({@link FormerRecipes}), for each command's seed rule, on the bundled model, with and without a learned concept.
 */
class TextToImageTest extends BundledCatTest {
    @Test
    void generateCommandsRuleWithAStochasticSampler() {
        // euler-a draws step noise, so this also pins the step-noise seed: (seed + k) ^ 0x5DEECE66D
        Request r = new Request("a red car on the beach", "a blue car", 7.5, 4, "euler-a", 64, 64);
        List<Drawn> before = FormerRecipes.generateCommand(sd, sd::encodePrompts, r, 7, 2, null);
        for (int k = 0; k < 2; k++) {
            assertSamePictures("generate, picture " + k, before.get(k), TextToImage.generate(sd, r, 7 + k, Progress.NONE));
        }
        // and the step noise matters here: another step-noise seed gives other pictures
        try (Scope s = Scope.inference()) {
            Tensor other = TextToImage.denoise(sd, r, TextToImage.conditioning(sd, r, w -> {}),
                    new SeededNoise(7).randn(TextToImage.latentShape(sd, 64, 64)), new SeededNoise(7), Progress.NONE);
            assertFalse(sameBits(before.get(0).latents(), Ops.toFloats(other)), "euler-a reads the step noise");
            other.releaseReference();
        }
    }

    @Test
    void generateCommandsRuleFromGivenInitialNoise() {
        Request r = new Request("a white cat on the grass", "", 5, 4, "euler-a", 64, 64);
        try (Scope s = Scope.inference()) {
            Tensor init = new SeededNoise(123).randn(TextToImage.latentShape(sd, 64, 64));
            Drawn before = FormerRecipes.generateCommand(sd, sd::encodePrompts, r, 5, 1, init).get(0);
            assertSamePictures("generate --init-latents", before, TextToImage.generate(sd, sd::encodePrompts, r, init, 5, Progress.NONE));
        }
    }

    @Test
    void demosTogetherRuleWithAConcept() {
        Request r = new Request("a my-cat on the left on the grass", "", 5, 3, "ddim", 64, 64);
        try (AppliedConcepts applied = applyCat()) {
            List<BufferedImage> before = FormerRecipes.demoTogether(sd, applied, r, 3, 2);
            for (int k = 0; k < 2; k++) {
                Generated now = TextToImage.generate(sd, applied, r, 3 + k, Progress.NONE);
                assertTrue(samePixels(before.get(k), now.image()), "demo together, picture " + k);
            }
        }
    }

    @Test
    void methodEvaluationsBatchRuleWithAndWithoutAConcept() {
        List<String> base = List.of("a cat on the grass", "a cat in the snow", "a cat on the left");
        assertSamePictures("evaluation, base model", FormerRecipes.methodEvaluation(sd, sd::encodePrompts, base, 5.0, 4, 1017),
                TextToImage.generate(sd, new Request(base, "", 5.0, 4, "ddim", 64, 64), 1017, Progress.NONE));
        List<String> texts = base.stream().map(t -> t.replace("a cat", "a my-cat")).toList();
        try (AppliedConcepts applied = applyCat()) {
            Drawn before = FormerRecipes.methodEvaluation(sd, applied, texts, 5.0, 4, 2017);
            assertSamePictures("evaluation, concept", before, TextToImage.generate(sd, applied, new Request(texts, "", 5.0, 4, "ddim", 64, 64), 2017, Progress.NONE));
        }
    }

    @Test
    void deterministicSamplersIgnoreTheOtherStepNoiseRules() {
        // prompt following, ConceptTrainer.sample and Pretrainer's samples seeded their step noise otherwise
        // (from, 0, i); DDIM at eta 0 draws none, so the shared rule draws their pictures unchanged
        List<String> prompts = List.of("a red car on the beach", "a yellow bird at night");
        assertSamePictures("prompt following", FormerRecipes.promptFollowing(sd, prompts, 5.0, 4, 11, 8),
                TextToImage.generate(sd, new Request(prompts, "", 5.0, 4, "ddim", 64, 64), 11 * 1000 + 8, Progress.NONE));
        try (AppliedConcepts applied = applyCat()) {
            assertSamePictures("trainer samples", FormerRecipes.trainerRender(sd, applied, "my-cat", 64, 1, 4),
                    TextToImage.generate(sd, applied, new Request("a photo of a my-cat", "", 5.0, 4, "ddim", 64, 64), 1, Progress.NONE));
        }
        assertSamePictures("pretraining samples", FormerRecipes.pretrainerSample(sd, "a green tree in the desert", 5, 64, 4),
                TextToImage.generate(sd, new Request("a green tree in the desert", "", 4.0, 4, "ddim", 64, 64), 1000 + 5, Progress.NONE));
    }

    @Test
    void sameSeedSamePicturesAndNothingNativeEscapes() {
        Request r = new Request(List.of("a black dog in the forest", "a blue mug in a room"), "", 5, 2, "ddim", 64, 64);
        Generated a = TextToImage.generate(sd, r, 4, Progress.NONE), b = TextToImage.generate(sd, r, 4, Progress.NONE);
        assertArrayEquals(new long[] {2, sd.latentChannels(), 16, 16}, a.latentShape());
        assertEquals(2, a.images().size());
        assertTrue(sameBits(a.latents(), b.latents()));
        assertThrows(IllegalStateException.class, a::image, "a batch has no single image");
        assertFalse(samePixels(a.images().get(0), TextToImage.generate(sd, r, 5, Progress.NONE).images().get(0)), "another seed, another picture");
    }

    private static void assertSamePictures(String where, Drawn before, Generated now) {
        System.out.println("former " + where + ": " + FormerRecipes.hash(before.latents(), before.images())
                + ", shared call: " + FormerRecipes.hash(now.latents(), now.images()));
        assertTrue(sameBits(before.latents(), now.latents()), where + ": final latents differ");
        assertEquals(before.images().size(), now.images().size(), where);
        for (int i = 0; i < before.images().size(); i++) {
            assertTrue(samePixels(before.images().get(i), now.images().get(i)), where + ": picture " + i + " differs");
        }
    }

    /** PNDM evaluates its second noise level twice: step-counted windows (layout first, side steering) count noise levels. */
    @Test
    void windowsCountedInStepsCountNoiseLevelsNotEvaluations() {
        var config = dev.perfusion.io.layout.ModelConfigs.builtIn("sd15").scheduler();
        for (String name : dev.perfusion.sampling.Schedulers.NAMES) {
            var scheduler = dev.perfusion.sampling.Schedulers.create(name, config);
            scheduler.setTimesteps(10);
            double[] t = scheduler.timesteps();
            int[] step = TextToImage.stepOfEach(t, 10);
            assertEquals(0, step[0], name);
            assertEquals(9, step[t.length - 1], name);
            for (int i = 1; i < t.length; i++) {
                assertEquals(t[i] == t[i - 1] ? step[i - 1] : step[i - 1] + 1, step[i], name + " evaluation " + i + " of " + java.util.Arrays.toString(t));
            }
            assertEquals(name.equals("pndm") ? 11 : 10, t.length, name + ": SD 1.5's PNDM skips the Runge-Kutta warm-up, repeating its second level");
        }
        assertArrayEquals(new int[] {0, 1, 1, 2, 3}, TextToImage.stepOfEach(new double[] {901, 801, 801, 701, 601}, 4));
        assertArrayEquals(new int[] {0, 1, 2, 3}, TextToImage.stepOfEach(new double[] {901, 801, 701, 601}, 4));
    }
}
