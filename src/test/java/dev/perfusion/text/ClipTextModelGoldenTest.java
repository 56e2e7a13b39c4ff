package dev.perfusion.text;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.perfusion.Fixtures;
import dev.perfusion.io.Safetensors;
import dev.perfusion.io.StateDict;
import dev.perfusion.nn.Weights;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.*;

/** The sd-tiny text encoder against transformers' CLIPTextModel outputs (fixture README section b). */
class ClipTextModelGoldenTest {
    private static final double TOLERANCE = 1e-4;
    private static ClipTextModel model;

    @BeforeEach
    void requireFixtures() {
        Fixtures.shared();
    }

    @BeforeAll
    static void loadFixtureModel() throws IOException {
        if (!Fixtures.present()) return; // each test then skips, saying so (requireFixtures)
        Path folder = Fixtures.diffusers().resolve("text_encoder");
        try (Scope s = Scope.inference()) {
            model = ClipTextModel.load(folder, Ops.cpu(), torch.ScalarType.Float);
        }
    }

    private static Tensor ids() {
        return Fixtures.golden("text_encoder_input_ids.npy").toTensor();
    }

    @Test
    void lastHiddenStateMatchesTransformers() {
        try (Scope s = Scope.inference()) {
            Tensor out = model.encode(ids());
            Tensor expected = Fixtures.golden("text_encoder_last_hidden_state.npy").toTensor();
            assertArrayEquals(new long[] {3, 77, 32}, Ops.shape(out));
            double diff = Ops.maxAbsDiff(out, expected);
            System.out.printf("text_encoder last_hidden_state: max abs diff %.3e (tolerance %.0e)%n", diff, TOLERANCE);
            assertTrue(diff <= TOLERANCE, "max abs diff " + diff);
        }
    }

    /**
     * pipe_ddim's prompt embeddings [negative, positive]. Every word of both prompts is a single whole-word entry
     * of the CLIP vocabulary, so the ids are bos, one id per word or comma, eos, then eos padding to 77.
     */
    @Test
    void pipelinePromptEmbeddingsMatch() throws IOException {
        JsonNode vocab = new ObjectMapper().readTree(Fixtures.diffusers().resolve("tokenizer/vocab.json").toFile());
        long[] negative = promptIds(vocab, "blurry", ",", "low", "quality");
        long[] positive = promptIds(vocab, "a", "photo", "of", "an", "astronaut", "riding", "a", "horse", "on", "mars");
        long[] both = new long[2 * 77];
        System.arraycopy(negative, 0, both, 0, 77);
        System.arraycopy(positive, 0, both, 77, 77);
        try (Scope s = Scope.inference()) {
            Tensor out = model.encode(Ops.fromLongs(both, 2, 77));
            double diff = Ops.maxAbsDiff(out, Fixtures.golden("pipe_ddim_prompt_embeds.npy").toTensor());
            System.out.printf("pipe_ddim prompt_embeds: max abs diff %.3e (tolerance %.0e)%n", diff, TOLERANCE);
            assertTrue(diff <= TOLERANCE, "max abs diff " + diff);
        }
    }

    private static long[] promptIds(JsonNode vocab, String... words) {
        long bos = vocab.get("<|startoftext|>").asLong();
        long eos = vocab.get("<|endoftext|>").asLong();
        long[] ids = new long[77];
        Arrays.fill(ids, eos);
        ids[0] = bos;
        for (int i = 0; i < words.length; i++) {
            JsonNode id = vocab.get(words[i] + "</w>");
            assertNotNull(id, words[i]);
            ids[i + 1] = id.asLong();
        }
        return ids;
    }

    @Test
    void encodeIsEncodeEmbeddingsOfTokenEmbeddings() {
        try (Scope s = Scope.inference()) {
            Tensor ids = ids();
            Tensor tokens = model.tokenEmbeddings(ids);
            assertArrayEquals(new long[] {3, 77, 32}, Ops.shape(tokens));
            Tensor table = model.tokenEmbedding().weight.t();
            assertEquals(0.0, Ops.maxAbsDiff(tokens.select(0, 0).select(0, 1), table.select(0, ids.select(0, 0).select(0, 1).item().toLong())));
            assertEquals(0.0, Ops.maxAbsDiff(model.encode(ids), model.encodeEmbeddings(tokens)));
        }
    }

    @Test
    void clipSkipIsFinalLayerNormOfAnEarlierLayer() {
        try (Scope s = Scope.inference()) {
            Tensor ids = ids();
            Tensor tokens = model.tokenEmbeddings(ids);
            ClipTextTransformer t = model.textModel();
            List<Tensor> states = model.hiddenStates(tokens);
            assertEquals(4, states.size());

            // the penultimate layer's output, walked block by block
            Tensor h = t.embeddings.withPositions(tokens);
            Tensor mask = ClipTextTransformer.causalMask(77, h.options());
            for (int i = 0; i < 2; i++) h = t.encoder.layers.get(i).forward(h, mask);
            Tensor penultimate = t.finalLayerNorm.forward(h);

            Tensor skip1 = model.encode(ids, 1);
            assertEquals(0.0, Ops.maxAbsDiff(skip1, penultimate));
            assertEquals(0.0, Ops.maxAbsDiff(skip1, t.finalLayerNorm.forward(states.get(states.size() - 2))));
            assertEquals(0.0, Ops.maxAbsDiff(model.encode(ids), t.finalLayerNorm.forward(states.get(states.size() - 1))));
            assertEquals(0.0, Ops.maxAbsDiff(model.encode(ids, 0), model.encode(ids)));
            assertTrue(Ops.maxAbsDiff(skip1, model.encode(ids)) > 0.1, "skipping a layer changes the output");
            assertEquals(0.0, Ops.maxAbsDiff(model.encode(ids, 3), t.finalLayerNorm.forward(states.get(0))));
            assertThrows(IllegalArgumentException.class, () -> model.encode(ids, 4));
            assertThrows(IllegalArgumentException.class, () -> model.encode(ids, -1));
        }
    }

    /**
     * Perfusion trains one word vector in place of a token's row: the gradient must reach it through the frozen
     * encoder, and the causal mask means it affects only its own and later positions.
     */
    @Test
    void replacedTokenRowReceivesGradientAndInfluencesOnlyLaterPositions() {
        try (Scope s = Scope.open()) {
            Tensor ids = Ops.narrow(ids(), 0, 0, 1); // "a photo of a cat": cat at position 5
            long cat = ids.select(0, 0).select(0, 5).item().toLong();
            assertEquals(1, Ops.item(ids.eq(new org.bytedeco.pytorch.Scalar(cat)).sum()));
            Tensor tokens = model.tokenEmbeddings(ids);
            torch.manual_seed(7);
            Tensor vector = model.tokenEmbedding().weight.t().select(0, cat)
                    .add(torch.randn(32).mul(new org.bytedeco.pytorch.Scalar(0.3))).detach().requires_grad_(true);

            Tensor out = model.encodeEmbeddings(ClipTextModel.replaceToken(tokens, ids, cat, vector));
            Tensor loss = out.pow(new org.bytedeco.pytorch.Scalar(2)).mean();
            loss.backward();
            Tensor grad = vector.grad();
            assertTrue(grad.defined(), "the vector received no gradient");
            double gradNorm = Ops.item(grad.norm());
            assertTrue(gradNorm > 1e-6 && Double.isFinite(gradNorm), "gradient norm " + gradNorm);
            assertFalse(model.tokenEmbedding().weight.t().requires_grad(), "the encoder stays frozen");

            // a random move: adding the same constant to every component would be invisible, since every
            // path from the residual stream goes through a layer norm, which removes the mean
            Tensor moved = vector.detach().add(torch.randn(32).mul(new org.bytedeco.pytorch.Scalar(0.5)));
            Tensor out2 = model.encodeEmbeddings(ClipTextModel.replaceToken(tokens, ids, cat, moved));
            for (int pos = 0; pos < 77; pos++) {
                double d = Ops.maxAbsDiff(out.select(1, pos), out2.select(1, pos));
                if (pos < 5) assertTrue(d < 1e-6, "position " + pos + " before the token changed by " + d);
                else assertTrue(d > 1e-3, "position " + pos + " at/after the token changed only by " + d);
            }
        }
    }

    @Test
    void positionIdsInACheckpointAreIgnored() throws IOException {
        Safetensors file = Safetensors.open(Fixtures.diffusers().resolve("text_encoder/model.safetensors"));
        StateDict withPositionIds = new StateDict() {
            static final String EXTRA = "text_model.embeddings.position_ids";
            public Set<String> keys() {
                Set<String> k = new java.util.LinkedHashSet<>(file.keys());
                k.add(EXTRA);
                return k;
            }
            public Tensor get(String name) {
                return name.equals(EXTRA) ? torch.arange(new org.bytedeco.pytorch.Scalar(77)).reshape(1, 77) : file.get(name);
            }
            public long[] shape(String name) { return name.equals(EXTRA) ? new long[] {1, 77} : file.shape(name); }
            public String describe(String name) { return file.describe(name); }
        };
        try (Scope s = Scope.inference()) {
            ClipTextModel m = ClipTextModel.create(model.config());
            Weights.load(m, withPositionIds, "", Ops.cpu(), torch.ScalarType.Float, "text encoder");
            assertEquals(0.0, Ops.maxAbsDiff(m.encode(ids()), model.encode(ids())));
        }
    }

    @Test
    void missingWeightsAreAClearError() throws IOException {
        Safetensors file = Safetensors.open(Fixtures.diffusers().resolve("text_encoder/model.safetensors"));
        StateDict withoutLayer2 = new StateDict() {
            public Set<String> keys() {
                return file.keys().stream().filter(k -> !k.startsWith("text_model.encoder.layers.2."))
                        .collect(Collectors.toCollection(java.util.LinkedHashSet::new));
            }
            public Tensor get(String name) { return file.get(name); }
            public long[] shape(String name) { return file.shape(name); }
            public String describe(String name) { return file.describe(name); }
        };
        ClipTextModel m = ClipTextModel.create(model.config());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Weights.load(m, withoutLayer2, "", Ops.cpu(), torch.ScalarType.Float, "text encoder"));
        assertTrue(e.getMessage().contains("text encoder") && e.getMessage().contains("16 of 52 tensors are missing")
                && e.getMessage().contains("text_model.encoder.layers.2."), e.getMessage());

        IOException noFile = assertThrows(IOException.class,
                () -> ClipTextModel.load(Fixtures.diffusers().resolve("tokenizer"), Ops.cpu(), torch.ScalarType.Float));
        assertTrue(noFile.getMessage().contains("config.json") || noFile.getMessage().contains("model.safetensors"),
                noFile.getMessage());
    }

    @Test
    void badIdsAreClearErrors() {
        try (Scope s = Scope.inference()) {
            IllegalArgumentException range = assertThrows(IllegalArgumentException.class,
                    () -> model.encode(Ops.fromLongs(new long[] {49406, 49408}, 1, 2)));
            assertTrue(range.getMessage().contains("49408"), range.getMessage());
            long[] tooLong = new long[78];
            Arrays.fill(tooLong, 320);
            IllegalArgumentException length = assertThrows(IllegalArgumentException.class,
                    () -> model.encode(Ops.fromLongs(tooLong, 1, 78)));
            assertTrue(length.getMessage().contains("77"), length.getMessage());
            assertThrows(IllegalArgumentException.class, () -> model.encode(Ops.fromFloats(new float[] {1, 2}, 1, 2)));
            // shorter prompts than 77 are fine, and position i of a short prompt equals position i of its padded form
            Tensor shortOut = model.encode(Ops.narrow(ids(), 1, 0, 10));
            assertEquals(0.0, Ops.maxAbsDiff(shortOut, Ops.narrow(model.encode(ids()), 1, 0, 10)), 1e-5);
        }
    }

}
