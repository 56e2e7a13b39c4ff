package dev.perfusion.pipeline;

import dev.perfusion.io.layout.ModelSource;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.util.Progress;
import dev.perfusion.world.Bundled;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.awt.image.BufferedImage;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class CrossAttentionMapsTest {
    @Test
    void wordAttentionHalvesOverlapAndImageFromKnownMaps() {
        // 2 x 4 maps: "a" everywhere alike, "dog" only on the left half, "car" only on the right half
        float[] even = {1, 1, 1, 1, 1, 1, 1, 1}, left = {2, 2, 0, 0, 2, 2, 0, 0}, right = {0, 0, 3, 3, 0, 0, 3, 3};
        WordAttention w = new WordAttention(List.of(ClipTokenizer.START_OF_TEXT, "dog", "car"), List.of(even, left, right), 2, 4);
        assertEquals(1.0, w.mean(1), 1e-12);
        assertEquals(2.0, w.left(1), 1e-12);
        assertEquals(0.0, w.right(1), 1e-12);
        assertEquals(3.0, w.right(2), 1e-12);
        assertEquals(0.0, w.overlap(1, 2), 1e-12, "disjoint maps");
        assertEquals(1.0, w.overlap(1, 1), 1e-12, "a map with itself");
        assertEquals(0.5, w.overlap(0, 1), 1e-12, "an even map against one half");
        assertEquals(java.util.Map.of("dog and car", 0.0), w.overlaps(List.of("dog", "cat", "car")), "pairs of the words present");
        assertEquals(2, w.positionOf("car"));
        assertEquals(-1, w.positionOf("cat"));
        assertTrue(w.table().lines().anyMatch(l -> l.matches("2 +car +1\\.5000 +0\\.0000 +3\\.0000")), w.table());
        // a picture whose latents are one column wide (4 pixels on the bundled model) has no halves: not NaN
        WordAttention narrow = new WordAttention(List.of(ClipTokenizer.START_OF_TEXT, "dog"), List.of(new float[] {1, 3}, new float[] {2, 4}), 2, 1);
        assertTrue(narrow.table().lines().anyMatch(l -> l.matches("1 +dog +3\\.0000 +- +-")), narrow.table());
        assertFalse(narrow.table().contains("NaN"), narrow.table());
        BufferedImage picture = new BufferedImage(64, 64, BufferedImage.TYPE_INT_RGB);
        BufferedImage grid = w.image(picture, 32);
        assertEquals(4 * 32, grid.getWidth(), "the picture and one tile per token");
        // "car" is the brightest word: white on its right half, black on its left (the grid's header is 24 px high)
        assertEquals(0xFFFFFF, grid.getRGB(3 * 32 + 28, 24 + 4) & 0xFFFFFF);
        assertEquals(0, grid.getRGB(3 * 32 + 4, 24 + 4) & 0xFFFFFF);
    }

    @Test
    void mapsOfAGuidedPictureAreItsPromptsProbabilities() throws Exception {
        StableDiffusion sd = StableDiffusion.load(Bundled.model(), ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float, Progress.NONE);
        TextToImage.Request r = new TextToImage.Request("a red car on the left on the grass", "", 5, 3, "ddim", 64, 64);
        long[] latent = TextToImage.latentShape(sd, 64, 64);
        BufferedImage plain = TextToImage.generate(sd, r, 3, Progress.NONE).image();
        CrossAttentionMaps maps = CrossAttentionMaps.observe(1, latent[2], latent[3]);
        try (Scope s = Scope.inference(); maps) {
            BufferedImage observed = TextToImage.generate(sd, r, 3, Progress.NONE).image();
            assertEquals(3 * sd.unet.crossAttentionLayers().size(), maps.passes(), "every layer at every step");
            Tensor mean = maps.mean();
            long[] shape = Ops.shape(mean);
            assertEquals(1, shape[0], "only the prompt's row of the guided batch");
            assertEquals(latent[2], shape[2]);
            // each pixel's probabilities over the text's positions sum to one, in every pass, so in the mean too
            float[] perPixel = Ops.toFloats(mean.sum(new long[] {1}, false, new org.bytedeco.pytorch.ScalarTypeOptional()));
            for (float v : perPixel) assertEquals(1.0, v, 1e-4);
            long[] ids = Ops.toLongs(sd.tokenize(List.of(r.prompts().get(0)), w -> {}));
            WordAttention words = WordAttention.of(mean, sd.tokenizer.positionNames(ids));
            assertEquals(List.of(ClipTokenizer.START_OF_TEXT, "a", "red", "car", "on", "the", "left", "on", "the", "grass",
                    ClipTokenizer.END_OF_TEXT), words.tokens(), "BOS to EOS, no padding");
            assertEquals(32 - 11, words.paddingPositions(), "the rest of the 32 positions, summed");
            // the words' and the padding's means: every pixel's whole attention
            double whole = words.paddingMean();
            for (int t = 0; t < words.tokens().size(); t++) whole += words.mean(t);
            assertEquals(1.0, whole, 1e-4);
            assertTrue(words.table().contains("padding (21)"), words.table());
            // the same picture as drawn without observing, to float rounding of the explicit softmax
            assertEquals(plain.getWidth(), observed.getWidth());
            int worst = 0;
            for (int y = 0; y < 64; y++) for (int x = 0; x < 64; x++) {
                for (int shift = 0; shift <= 16; shift += 8) worst = Math.max(worst, Math.abs(((plain.getRGB(x, y) >> shift) & 255) - ((observed.getRGB(x, y) >> shift) & 255)));
            }
            assertTrue(worst <= 2, "observing changed the picture by " + worst + " levels");
        }
        TextToImage.generate(sd, r, 4, Progress.NONE);
        assertEquals(3 * sd.unet.crossAttentionLayers().size(), maps.passes(), "closed: no observer is left behind");
    }

    @Test
    void observingOneThreadLeavesAPictureDrawnOnAnotherAsItIs() throws Exception {
        StableDiffusion sd = StableDiffusion.load(Bundled.model(), ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float, Progress.NONE);
        TextToImage.Request r = new TextToImage.Request("a red car on the grass", "", 5, 3, "ddim", 64, 64);
        long[] latent = TextToImage.latentShape(sd, 64, 64);
        float[] plain = TextToImage.generate(sd, r, 5, Progress.NONE).latents();
        try (Scope s = Scope.inference(); CrossAttentionMaps maps = CrossAttentionMaps.observe(1, latent[2], latent[3])) {
            java.util.concurrent.ExecutorService other = java.util.concurrent.Executors.newSingleThreadExecutor();
            try {
                float[] beside = other.submit(() -> TextToImage.generate(sd, r, 5, Progress.NONE).latents()).get();
                // the fused kernel, bit for bit: the other thread's passes were not observed
                assertArrayEquals(plain, beside);
            } finally {
                other.shutdown();
            }
            assertEquals(0, maps.passes(), "a picture drawn on another thread is not in this thread's maps");
            TextToImage.generate(sd, r, 5, Progress.NONE);
            assertEquals(3 * sd.unet.crossAttentionLayers().size(), maps.passes(), "this thread's picture is");
        }
    }
}
