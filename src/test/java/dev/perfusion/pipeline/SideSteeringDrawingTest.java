package dev.perfusion.pipeline;

import dev.perfusion.perfusion.AppliedConcepts;
import dev.perfusion.pipeline.TextToImage.Generated;
import dev.perfusion.pipeline.TextToImage.Request;
import dev.perfusion.tensor.Scope;
import dev.perfusion.util.Progress;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;

import static dev.perfusion.pipeline.FormerRecipes.samePixels;
import static org.junit.jupiter.api.Assertions.*;

/** Side steering on the bundled model: a pair's words read on their own halves; a prompt without a side drawn as before. */
class SideSteeringDrawingTest extends BundledCatTest {
    private static final String PAIR = "a cat on the left and a dog on the right on the grass";

    @Test
    void aPromptWithoutASideIsDrawnBitForBitAsUnsteered() {
        Request plain = new Request("a white cat on the grass", "", 5, 4, "ddim", 64, 64);
        Generated unsteered = TextToImage.generate(sd, plain, 3, Progress.NONE);
        Generated steered = TextToImage.generate(sd, plain.withSideSteering(3), 3, Progress.NONE);
        assertTrue(samePixels(unsteered.image(), steered.image()));
        try (AppliedConcepts applied = applyCat()) {
            Request concept = new Request("a my-cat next to a dog", "", 5, 4, "ddim", 64, 64);
            assertTrue(samePixels(TextToImage.generate(sd, applied, concept, 3, Progress.NONE).image(),
                    TextToImage.generate(sd, applied, concept.withSideSteering(3), 3, Progress.NONE).image()), "with a concept");
        }
    }

    @Test
    void aPairsWordsAreReadOnTheirOwnHalves() {
        Request r = new Request(PAIR, "", 5, 6, "ddim", 64, 64);
        WordAttention unsteered = attention(r), steered = attention(r.withSideSteering(SideSteering.DEFAULT_STRENGTH));
        int cat = unsteered.tokens().indexOf("cat"), dog = unsteered.tokens().indexOf("dog");
        assertTrue(cat > 0 && dog > cat, "the tokens: " + unsteered.tokens());
        // the share of the left half's attention that "cat" takes over the right half's, before and after
        double catBefore = unsteered.left(cat) / unsteered.right(cat), catAfter = steered.left(cat) / steered.right(cat);
        double dogBefore = unsteered.right(dog) / unsteered.left(dog), dogAfter = steered.right(dog) / steered.left(dog);
        assertTrue(catAfter > 1.5 * catBefore && catAfter > 1.5, "cat left/right " + catBefore + " -> " + catAfter);
        assertTrue(dogAfter > 1.5 * dogBefore && dogAfter > 1.5, "dog right/left " + dogBefore + " -> " + dogAfter);
        assertFalse(samePixels(TextToImage.generate(sd, r, 1, Progress.NONE).image(),
                TextToImage.generate(sd, r.withSideSteering(3), 1, Progress.NONE).image()), "the pair is drawn otherwise");
    }

    @Test
    void theConceptsTokenizerFindsTheConceptsWord() {
        try (AppliedConcepts applied = applyCat()) {
            SideSteering s = SideSteering.of(applied.tokenizer(sd), List.of("", "a my-cat on the right and a dog on the left"), 8, 8, 3);
            assertNotNull(s);
            int[] sides = s.sides(1);
            // <s> a my-cat on the right and a dog ...: the concept's word is one token of the concepts' tokenizer
            assertEquals(1, sides[2], "my-cat");
            assertEquals(-1, sides[8], "dog");
            assertTrue(java.util.Arrays.stream(s.sides(0)).allMatch(x -> x == 0), "the negative prompt");
            s.release();
        }
        assertNull(SideSteering.of(sd.tokenizer, List.of("a cat next to a dog"), 8, 8, 3), "nothing to steer");
        assertNull(SideSteering.of(sd.tokenizer, List.of(PAIR), 8, 8, 0), "strength 0");
        assertThrows(IllegalArgumentException.class, () -> new Request(PAIR, "", 5, 6, "ddim", 64, 64).withSideSteering(-1));
        assertThrows(IllegalArgumentException.class, () -> new Request(PAIR, "", 5, 6, "ddim", 64, 64).withSideSteering(Double.NaN));
    }

    private static long[] latentSize(Request r) { return TextToImage.latentShape(sd, r.width(), r.height()); }

    /** Where the one picture of {@code r} reads each word, over all its steps. */
    private static WordAttention attention(Request r) {
        try (Scope s = Scope.inference();
             CrossAttentionMaps maps = CrossAttentionMaps.observe(1, latentSize(r)[2], latentSize(r)[3])) {
            TextToImage.generate(sd, r, 1, Progress.NONE);
            Tensor ids = sd.tokenize(List.of(r.prompts().get(0)), w -> {});
            return WordAttention.of(maps.mean(), sd.tokenizer.positionNames(dev.perfusion.tensor.Ops.toLongs(ids.select(0, 0))));
        }
    }
}
