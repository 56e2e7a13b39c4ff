package dev.perfusion.perfusion;

import dev.perfusion.Fixtures;
import dev.perfusion.io.layout.ModelSource;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.util.Progress;
import dev.perfusion.world.Bundled;
import dev.perfusion.world.WorldCorpus;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** Installing concepts: supercategories that are not one token, the gate's beta and tau, global key locking in any precision. */
class AppliedConceptsTest {
    @Test
    void aMultiTokenSupercategorySuggestsOnlyRealOneTokenWords() throws IOException {
        ClipTokenizer world = ClipTokenizer.load(Bundled.model().resolve("tokenizer"));
        String elephant = error(world, "elephant");
        assertTrue(elephant.startsWith("the supercategory 'elephant' is not a single token of this model's vocabulary: it becomes [el, "), elephant);
        assertFalse(elephant.contains("e.g."), "no word of the world's vocabulary is spelled like 'elephant': " + elephant);
        assertTrue(elephant.endsWith("choose a common one-word noun that is a single token, a simpler synonym"
                + " (no single-token word of the vocabulary is spelled like it)"), elephant);
        assertTrue(error(world, "doggo").endsWith("choose a common one-word noun that is a single token, e.g. 'dog', or a simpler synonym"),
                error(world, "doggo"));
        assertTrue(error(world, "teddybear").contains("e.g. 'teddy', or"), error(world, "teddybear"));
        assertEquals(List.of("teddy"), AppliedConcepts.singleTokenWordsNear(world, "teddy bear"), "its own words that are tokens");
        for (String word : List.of("elephant", "doggo", "teddybear", "sparrowhawk", "mugs")) {
            for (String s : AppliedConcepts.singleTokenWordsNear(world, word)) assertRealWord(world, s);
        }
    }

    @Test
    void onClipsVocabularyTheSuggestionsAreWholeWords() throws IOException {
        ClipTokenizer clip = ClipTokenizer.load(Fixtures.diffusers().resolve("tokenizer"));
        assertEquals(List.of("teddy", "bear"), AppliedConcepts.singleTokenWordsNear(clip, "teddybear"), "the words it is made of");
        assertEquals(List.of("house", "cat"), AppliedConcepts.singleTokenWordsNear(clip, "housecat").subList(0, 2));
        for (String word : List.of("teddybear", "grizzlybear", "xylophonist", "kittycat")) {
            List<String> near = AppliedConcepts.singleTokenWordsNear(clip, word);
            assertTrue(near.size() <= 3, near.toString());
            for (String s : near) assertRealWord(clip, s);
        }
        assertTrue(error(clip, "grizzlybear").contains("e.g. 'grizzly', 'bear' or"), error(clip, "grizzlybear"));
    }

    /** The UNet reads the encodings in its own precision (TextToImage casts them): the keys must be locked for that tensor. */
    @ParameterizedTest
    @ValueSource(strings = {"Float", "BFloat16"})
    void globalKeyLockingHoldsForTheEncodingsTheUNetReads(String precision, @TempDir Path cache) throws IOException {
        torch.ScalarType type = torch.ScalarType.valueOf(precision);
        StableDiffusion sd = StableDiffusion.load(Bundled.model(), ModelSource.Options.defaults(), Ops.cpu(), type, Progress.NONE);
        Tensor cInv = CovarianceCache.inverseFor(sd, WorldCorpus.world(), cache, 300, Progress.NONE);
        ConceptFile cat = ConceptFile.load(Bundled.concept("my-cat"));
        try (Scope scope = Scope.inference();
             AppliedConcepts applied = AppliedConcepts.apply(sd, cInv, List.of(new AppliedConcepts.Use(cat, cat.beta(), cat.tau())),
                     ConceptGate.Orthogonalization.EXACT, true)) {
            Tensor encoded = applied.encode(List.of("a photo of a my-cat on the grass"), w -> {}), context = encoded.to(sd.dtype);
            // the very tensor: the gate's other per-prompt state (training's i* per micro-batch, trackIStarFor) is keyed by it too
            assertEquals(encoded.data_ptr().address(), context.data_ptr().address(), "the UNet reads the tensor the gate was told about");
            Tensor keys = applied.gate().keyInput(context);
            assertEquals(type, keys.scalar_type().intern());
            assertTrue(Ops.maxAbsDiff(keys.to(torch.ScalarType.Float), context.to(torch.ScalarType.Float)) > 0.1,
                    "the K projections read the prompt with 'cat' in place of 'my-cat'");
        }
    }

    @Test
    void betaAndTauHaveOneRuleForTrainingAndGeneration() throws IOException {
        ConceptFile cat = ConceptFile.load(Bundled.concept("my-cat"));
        for (double[] gate : new double[][] {{2.5, 0.15}, {-1, 0.15}, {Double.NaN, 0.15}, {0.7, 0}, {0.7, 1.5}}) {
            String use = assertThrows(IllegalArgumentException.class, () -> new AppliedConcepts.Use(cat, gate[0], gate[1])).getMessage();
            String concept = assertThrows(IllegalArgumentException.class, () -> new Concept(cat.iStar(), gate[0], gate[1])).getMessage();
            assertEquals(concept, use, "one rule, one message");
            assertTrue(use.startsWith("the gate threshold beta must be in (-1, 2), got ") || use.startsWith("the gate temperature tau must be in (0, 1], got "), use);
        }
        assertEquals(1.9, new AppliedConcepts.Use(cat, 1.9, 1).beta());
        assertEquals(-0.9, new Concept(cat.iStar(), -0.9, 1).beta());
    }

    private static void assertRealWord(ClipTokenizer tokenizer, String word) {
        assertTrue(word.matches("[a-z]{3,}"), word);
        assertEquals(List.of(word + "</w>"), tokenizer.tokensOf(word), word + " is one whole-word token");
    }

    private static String error(ClipTokenizer tokenizer, String word) {
        return assertThrows(IllegalArgumentException.class, () -> AppliedConcepts.singleToken(tokenizer, word)).getMessage();
    }
}
