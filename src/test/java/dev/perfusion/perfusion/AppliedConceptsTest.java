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

    /** Training encodes each distinct prompt of a step once: the word embedding's gradient must be that of every row. */
    @Test
    void aRepeatingBatchGivesTheWordEmbeddingTheGradientOfEveryRow(@TempDir Path cache) throws IOException {
        StableDiffusion sd = StableDiffusion.load(Bundled.model(), ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float, Progress.NONE);
        Tensor cInv = CovarianceCache.inverseFor(sd, WorldCorpus.world(), cache, 300, Progress.NONE);
        ConceptFile cat = ConceptFile.load(Bundled.concept("my-cat"));
        List<String> prompts = List.of("a photo of a my-cat", "a my-cat on the grass", "a photo of a my-cat", "a photo of a my-cat");
        try (Scope scope = Scope.open()) {
            // a different weight per row, so a row counted once too often or too few shows
            Tensor viaBatch = embeddingGradient(sd, cInv, cat, applied ->
                    Ops.mul(applied.encode(prompts, w -> {}), Ops.fromFloats(new float[] {1, 2, 3, 4}, 4, 1, 1)).sum());
            Tensor viaRows = embeddingGradient(sd, cInv, cat, applied -> {
                Tensor loss = null;
                for (int i = 0; i < prompts.size(); i++) {
                    Tensor row = Ops.mul(applied.encode(List.of(prompts.get(i)), w -> {}), i + 1.0).sum();
                    loss = loss == null ? row : Ops.add(loss, row);
                }
                return loss;
            });
            assertTrue(Ops.item(viaRows.abs().max()) > 1e-3, "the rows' loss reaches the word embedding");
            assertTrue(Ops.maxAbsDiff(viaBatch, viaRows) < 1e-4 * Ops.item(viaRows.abs().max()),
                    "gradient through the distinct prompts' encodings: " + Ops.maxAbsDiff(viaBatch, viaRows));
        }
    }

    /** The gradient of {@code loss} with respect to the concept's word embedding, the concept installed with it learnable. */
    private static Tensor embeddingGradient(StableDiffusion sd, Tensor cInv, ConceptFile concept,
                                            java.util.function.Function<AppliedConcepts, Tensor> loss) {
        Tensor embedding = Ops.trainableCopy(concept.embedding());
        ConceptFile learning = new ConceptFile(concept.word(), concept.supercategory(), embedding, concept.iStar(), concept.edit(),
                concept.beta(), concept.tau(), concept.baseModelHash(), concept.textEncoderHash(), concept.settings());
        try (AppliedConcepts applied = AppliedConcepts.apply(sd, cInv, List.of(new AppliedConcepts.Use(learning, concept.beta(), concept.tau())),
                ConceptGate.Orthogonalization.EXACT, false)) {
            loss.apply(applied).backward();
        }
        return embedding.grad().clone();
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
