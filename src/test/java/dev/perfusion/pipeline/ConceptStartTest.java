package dev.perfusion.pipeline;

import dev.perfusion.perfusion.AppliedConcepts;
import dev.perfusion.perfusion.ConceptGeneration;
import dev.perfusion.perfusion.CovarianceFile;
import dev.perfusion.perfusion.GatedRankOneProjection;
import dev.perfusion.pipeline.TextToImage.Generated;
import dev.perfusion.pipeline.TextToImage.Request;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.unet.Attention;
import dev.perfusion.util.Progress;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A concept start ({@link AppliedConcepts#startingAt}): the first steps of a picture are the base model's with the
 * supercategory word, the rest the concepts', on the bundled model with its shipped concept.
 */
class ConceptStartTest extends BundledCatTest {
    @Test
    void stepsBeforeTheStartAreTheBaseModelsWithTheSupercategoryWord() {
        try (Scope s = Scope.inference()) {
            Tensor latents = SeededNoise.forPicture(3).randn(TextToImage.latentShape(sd, 64, 64));
            Tensor t = Ops.fromFloats(new float[] {500f}, 1);
            float[] base = Ops.toFloats(sd.unet.forward(latents, t, sd.encodePrompts(List.of("a cat on the grass"), w -> {})));
            try (AppliedConcepts applied = applyCat()) {
                PromptEncoder.EarlySteps early = applied.startingAt(0.6).earlySteps(List.of("a my-cat on the grass"), 3, w -> {});
                assertEquals(2, early.count(), "0.6 of 3 steps");
                assertArrayEquals(base, Ops.toFloats(early.predict(sd.unet, latents, t)), "the base model's prediction for a cat, bit for bit");
                float[] concept = Ops.toFloats(sd.unet.forward(latents, t, applied.encode(List.of("a my-cat on the grass"), w -> {})));
                assertFalse(Arrays.equals(base, concept), "the concept's steps predict otherwise");
            }
        }
    }

    /** A start below 1 leaves the concepts at least the last step: rounded to every step, they drew nothing. */
    @Test
    void theConceptsDrawAtLeastTheLastStep() {
        try (AppliedConcepts applied = applyCat()) {
            List<String> prompts = List.of("a my-cat on the grass");
            assertEquals(4, applied.startingAt(0.9).earlySteps(prompts, 5, w -> {}).count(), "0.9 of 5 steps rounds to 5");
            assertEquals(1, applied.startingAt(0.8).earlySteps(prompts, 2, w -> {}).count());
            assertNull(applied.startingAt(0.6).earlySteps(prompts, 1, w -> {}), "one step: the concept's");
        }
    }

    @Test
    void fromTheStartOnTheConceptDrawsAndZeroIsThePapersPicture() {
        Request r = new Request("a my-cat on the grass", "", 5, 4, "ddim", 64, 64);
        Generated base = TextToImage.generate(sd, r.withPrompt("a cat on the grass"), 5, Progress.NONE);
        try (AppliedConcepts applied = applyCat()) {
            Generated paper = TextToImage.generate(sd, applied, r, 5, Progress.NONE);
            assertArrayEquals(paper.latents(), TextToImage.generate(sd, applied.startingAt(0), r, 5, Progress.NONE).latents(),
                    "a start of 0: every step with the concept");
            assertArrayEquals(paper.latents(), TextToImage.generate(sd, applied.startingAt(0.1), r, 5, Progress.NONE).latents(),
                    "0.1 of 4 steps rounds to none");
            Generated half = TextToImage.generate(sd, applied.startingAt(0.5), r, 5, Progress.NONE);
            assertFalse(Arrays.equals(paper.latents(), half.latents()), "two steps laid out by the base model");
            assertFalse(Arrays.equals(base.latents(), half.latents()), "two steps drawn by the concept");
        }
        assertArrayEquals(base.latents(), TextToImage.generate(sd, r.withPrompt("a cat on the grass"), 5, Progress.NONE).latents(),
                "the model restored");
    }

    @Test
    void picturesDrawnSideBySideEachLeaveTheirOwnLayoutToTheBaseModel() throws Exception {
        ConceptGeneration.Settings settings = new ConceptGeneration.Settings("", 5, 4, "ddim", 0, 0, false, false, 0.5, 0);
        List<String> prompts = List.of("a my-cat on the grass", "a my-cat in the snow", "a my-cat on the beach", "a my-cat at night");
        List<Long> seeds = List.of(1L, 2L, 3L, 4L);
        CovarianceFile.Loaded loaded = new CovarianceFile.Loaded(cInv, "a test's");
        try (ConceptGeneration g = ConceptGeneration.open(sd, List.of(new ConceptGeneration.Choice(Path.of("my-cat.safetensors"), cat, null, null)),
                settings, false, () -> loaded, Progress.NONE)) {
            List<BufferedImage> alone = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++) alone.add(g.draw(prompts.get(i), seeds.get(i)).image());
            BufferedImage[] together = new BufferedImage[prompts.size()];
            g.drawEach(prompts, seeds, (i, picture) -> together[i] = picture.image());
            for (int i = 0; i < prompts.size(); i++) {
                assertArrayEquals(pixels(alone.get(i)), pixels(together[i]), "picture " + i + " (" + sd.sideBySideWorkers(prompts.size()) + " side by side)");
            }
            assertTrue(g.draw(prompts.get(0), 1).parameters().text().contains("Concept start: 0.5"), "the PNG says how it was drawn");
        }
    }

    @Test
    void theOriginalProjectionsServeOnlyTheCallingThreadAndOnlyWithin() {
        try (AppliedConcepts applied = applyCat(); Scope scope = Scope.inference()) {
            assertInstanceOf(GatedRankOneProjection.class, sd.unet.crossAttentionLayers().get(0).value());
            long[] shape = TextToImage.latentShape(sd, 64, 64);
            Tensor latents = new SeededNoise(1).randn(shape), t = Ops.fromFloats(new float[] {500f}, 1);
            Tensor context = applied.encode(List.of("a photo of a my-cat"), w -> {});
            Supplier<float[]> predict = () -> {
                try (Scope step = Scope.inference()) { // inference mode is per thread
                    return Ops.toFloats(sd.unet.forward(latents, t, context));
                }
            };
            float[] withEdits = predict.get();
            float[] original = Attention.withOriginalProjections(predict);
            assertFalse(Arrays.equals(withEdits, original), "the edits change the prediction");
            // another thread, while this one is inside, still reads the edited projections
            assertArrayEquals(withEdits, Attention.withOriginalProjections(() -> CompletableFuture.supplyAsync(predict).join()));
            // nested: the inner scope leaves the outer one as it was
            assertArrayEquals(original, Attention.withOriginalProjections(() -> {
                Attention.withOriginalProjections(() -> null);
                return predict.get();
            }));
            assertArrayEquals(withEdits, predict.get(), "the edits again after the scope");
        }
    }

    @Test
    void aStartOutsideZeroToOneIsRefused() {
        try (AppliedConcepts applied = applyCat()) {
            for (double bad : new double[] {-0.1, 1, 1.5, Double.NaN}) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> applied.startingAt(bad));
                assertTrue(e.getMessage().contains("the concept start must be a fraction of the denoising steps in [0, 1)"), e.getMessage());
            }
        }
    }

    private static int[] pixels(BufferedImage image) {
        return image.getRGB(0, 0, image.getWidth(), image.getHeight(), null, 0, image.getWidth());
    }
}
