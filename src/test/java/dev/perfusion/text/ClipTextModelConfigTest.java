package dev.perfusion.text;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.perfusion.Fixtures;
import dev.perfusion.io.Safetensors;
import dev.perfusion.nn.Param;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.util.HashSet;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** Config parsing and module layout, without weights (nothing is allocated for the big configs). */
class ClipTextModelConfigTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private static ClipTextConfig resource(String name) throws IOException {
        try (InputStream in = ClipTextModelConfigTest.class.getResourceAsStream(name)) {
            assertNotNull(in, name);
            return ClipTextConfig.fromJson(JSON.readTree(in));
        }
    }

    /** A config with the keys the shapes depend on (at transformers' defaults) and {@code more} keys: "\"a\": 1, ...". */
    private static JsonNode config(String more) throws IOException {
        return JSON.readTree("{\"vocab_size\": 49408, \"hidden_size\": 512, \"intermediate_size\": 2048,"
                + " \"max_position_embeddings\": 77" + (more.isEmpty() ? "" : ", " + more) + "}");
    }

    private static void assertNothingAllocated(ClipTextModel model) {
        for (Param p : model.namedParameters().values()) assertFalse(p.isSet(), p.path());
    }

    @Test
    void sd15ConfigGivesTheClipVitL14TextTower() throws IOException {
        ClipTextConfig c = resource("sd15_text_encoder_config.json");
        assertEquals(49408, c.vocabSize());
        assertEquals(768, c.hiddenSize());
        assertEquals(3072, c.intermediateSize());
        assertEquals(12, c.numHiddenLayers());
        assertEquals(12, c.numAttentionHeads());
        assertEquals(64, c.headDim());
        assertEquals(77, c.maxPositionEmbeddings());
        assertEquals(ClipActivation.QUICK_GELU, c.activation());
        assertEquals(1e-5, c.layerNormEps());
        assertEquals(0, c.bosTokenId());
        assertEquals(2, c.eosTokenId());
        ClipTextModel model = ClipTextModel.create(c);
        assertEquals(123_060_480L, model.parameterCount());
        assertEquals(16 * 12 + 4, model.namedParameters().size());
        assertNothingAllocated(model);
    }

    @Test
    void sd21ConfigGivesTheOpenClipH14TextTowerWithoutItsLastLayer() throws IOException {
        ClipTextConfig c = resource("sd21_text_encoder_config.json");
        assertEquals(1024, c.hiddenSize());
        assertEquals(4096, c.intermediateSize());
        assertEquals(23, c.numHiddenLayers());
        assertEquals(16, c.numAttentionHeads());
        assertEquals(ClipActivation.GELU, c.activation());
        assertEquals(512, c.projectionDim());
        ClipTextModel model = ClipTextModel.create(c);
        // 49408*1024 + 77*1024 + 23 * 12,596,224 + 2*1024
        assertEquals(340_387_840L, model.parameterCount());
        assertEquals(23, model.textModel().encoder.layers.size());
        assertNothingAllocated(model);
    }

    @Test
    void parameterNamesAreTransformersStateDictNames() throws IOException {
        Map<String, Param> params = ClipTextModel.create(resource("sd15_text_encoder_config.json")).namedParameters();
        for (String key : new String[] {
                "text_model.embeddings.token_embedding.weight",
                "text_model.embeddings.position_embedding.weight",
                "text_model.encoder.layers.0.self_attn.q_proj.weight",
                "text_model.encoder.layers.0.self_attn.k_proj.bias",
                "text_model.encoder.layers.0.self_attn.v_proj.weight",
                "text_model.encoder.layers.11.self_attn.out_proj.bias",
                "text_model.encoder.layers.5.layer_norm1.weight",
                "text_model.encoder.layers.5.layer_norm2.bias",
                "text_model.encoder.layers.7.mlp.fc1.weight",
                "text_model.encoder.layers.7.mlp.fc2.bias",
                "text_model.final_layer_norm.weight"}) {
            assertTrue(params.containsKey(key), key);
        }
        assertArrayEquals(new long[] {3072, 768}, params.get("text_model.encoder.layers.7.mlp.fc1.weight").shape());
        assertFalse(params.containsKey("text_model.embeddings.position_ids"), "position_ids is a buffer, not a weight");
        assertFalse(params.containsKey("text_model.encoder.layers.12.mlp.fc1.weight"));
    }

    @Test
    void fixtureConfigMatchesItsCheckpointKeyForKey() throws IOException {
        ClipTextConfig c = ClipTextConfig.load(Fixtures.diffusers().resolve("text_encoder"));
        assertEquals(32, c.hiddenSize());
        assertEquals(3, c.numHiddenLayers());
        assertEquals(4, c.numAttentionHeads());
        assertEquals(37, c.intermediateSize());
        assertEquals(49407, c.padTokenId());
        ClipTextModel model = ClipTextModel.create(c);
        assertEquals(1_603_951L, model.parameterCount());
        Safetensors st = Safetensors.open(Fixtures.diffusers().resolve("text_encoder/model.safetensors"));
        assertEquals(new HashSet<>(st.keys()), model.namedParameters().keySet());
        for (Map.Entry<String, Param> e : model.namedParameters().entrySet()) {
            assertArrayEquals(st.shape(e.getKey()), e.getValue().shape(), e.getKey());
        }
    }

    @Test
    void absentKeysTakeTransformers431Defaults() throws IOException {
        ClipTextConfig c = ClipTextConfig.fromJson(config("\"num_attention_heads\": 4"));
        ClipTextConfig d = ClipTextConfig.defaults();
        assertEquals(4, c.numAttentionHeads());
        assertEquals(12, c.numHiddenLayers());
        assertEquals("quick_gelu", c.hiddenAct());
        assertEquals(1e-5, c.layerNormEps());
        assertEquals(49406, c.bosTokenId());
        assertEquals(49407, c.eosTokenId());
        assertEquals(1, c.padTokenId());
        assertEquals(d, ClipTextConfig.fromJson(config("\"pad_token_id\": null")));
        assertEquals(512, d.hiddenSize());
        assertEquals(8, d.numAttentionHeads());
    }

    @Test
    void keysTheShapesDependOnHaveNoDefault() throws IOException {
        for (String key : new String[] {"vocab_size", "hidden_size", "intermediate_size", "max_position_embeddings"}) {
            var json = (com.fasterxml.jackson.databind.node.ObjectNode) config("");
            json.remove(key);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ClipTextConfig.fromJson(json));
            assertTrue(e.getMessage().startsWith("text encoder config lacks '" + key + "'"), e.getMessage());
        }
        java.nio.file.Path file = java.nio.file.Files.createTempFile("text-encoder", ".json");
        try {
            java.nio.file.Files.writeString(file, "{\"hidden_size\": 768}");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ClipTextConfig.load(file));
            assertTrue(e.getMessage().startsWith(file + ": text encoder config lacks 'vocab_size'"), e.getMessage());
        } finally {
            java.nio.file.Files.delete(file);
        }
        // a full CLIP config's text_config is written as its difference from the defaults: there they are the reference
        ClipTextConfig nested = ClipTextConfig.fromJson(JSON.readTree("{\"model_type\": \"clip\", \"text_config\": {\"hidden_size\": 768,"
                + " \"num_attention_heads\": 12}}"));
        assertEquals(49408, nested.vocabSize());
    }

    @Test
    void aCheckThatFailsOnADefaultNamesTheDefaultsTaken() throws IOException {
        // hidden_size 100 against the default 8 heads
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ClipTextConfig.fromJson(JSON.readTree("{\"vocab_size\": 10, \"hidden_size\": 100, \"intermediate_size\": 20,"
                        + " \"max_position_embeddings\": 8}")));
        assertTrue(e.getMessage().contains("not divisible by num_attention_heads 8")
                && e.getMessage().contains("absent keys took defaults: num_hidden_layers=12, num_attention_heads=8,"), e.getMessage());
    }

    @Test
    void fullClipConfigContributesItsTextConfig() throws IOException {
        JsonNode full = JSON.readTree("{\"model_type\": \"clip\", \"projection_dim\": 768, \"text_config\": "
                + "{\"hidden_size\": 768, \"intermediate_size\": 3072, \"num_attention_heads\": 12}, "
                + "\"vision_config\": {\"hidden_size\": 1024}}");
        ClipTextConfig c = ClipTextConfig.fromJson(full);
        assertEquals(768, c.hiddenSize());
        assertEquals(12, c.numAttentionHeads());
    }

    @Test
    void otherActivationsParse() throws IOException {
        assertEquals(ClipActivation.GELU_TANH,
                ClipTextConfig.fromJson(config("\"hidden_act\": \"gelu_new\"")).activation());
        assertEquals(ClipActivation.GELU_TANH,
                ClipTextConfig.fromJson(config("\"hidden_act\": \"gelu_pytorch_tanh\"")).activation());
        try (Scope s = Scope.inference()) {
            float[] x = {-2f, -0.5f, 0f, 0.7f, 3f};
            float[] quick = Ops.toFloats(ClipActivation.QUICK_GELU.apply(Ops.fromFloats(x, 5)));
            float[] exact = Ops.toFloats(ClipActivation.GELU.apply(Ops.fromFloats(x, 5)));
            float[] tanh = Ops.toFloats(ClipActivation.GELU_TANH.apply(Ops.fromFloats(x, 5)));
            for (int i = 0; i < x.length; i++) {
                assertEquals(x[i] / (1 + Math.exp(-1.702 * x[i])), quick[i], 1e-6);
                assertEquals(0.5 * x[i] * (1 + erf(x[i] / Math.sqrt(2))), exact[i], 1e-5);
                double u = Math.sqrt(2 / Math.PI) * (x[i] + 0.044715 * Math.pow(x[i], 3));
                assertEquals(0.5 * x[i] * (1 + Math.tanh(u)), tanh[i], 1e-6);
            }
        }
    }

    /** Abramowitz-Stegun 7.1.26, |error| < 1.5e-7. */
    private static double erf(double x) {
        double t = 1 / (1 + 0.3275911 * Math.abs(x));
        double y = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t
                * Math.exp(-x * x);
        return Math.signum(x) * y;
    }

    @Test
    void invalidConfigsAreClearErrors() throws IOException {
        IllegalArgumentException act = assertThrows(IllegalArgumentException.class,
                () -> ClipTextConfig.fromJson(config("\"hidden_act\": \"swishy\"")));
        assertTrue(act.getMessage().contains("swishy") && act.getMessage().contains("quick_gelu"), act.getMessage());
        IllegalArgumentException heads = assertThrows(IllegalArgumentException.class,
                () -> ClipTextConfig.fromJson(JSON.readTree("{\"vocab_size\": 10, \"hidden_size\": 100, \"intermediate_size\": 20,"
                        + " \"max_position_embeddings\": 8, \"num_attention_heads\": 8}")));
        assertTrue(heads.getMessage().contains("num_attention_heads"), heads.getMessage());
        IllegalArgumentException type = assertThrows(IllegalArgumentException.class,
                () -> ClipTextConfig.fromJson(config("\"hidden_size\": \"768\"")));
        assertTrue(type.getMessage().contains("hidden_size"), type.getMessage());
    }

    @Test
    void unloadedModelNamesTheMissingParameter() {
        ClipTextModel model = ClipTextModel.create(new ClipTextConfig(100, 8, 16, 2, 2, 77, "quick_gelu", 1e-5,
                98, 99, 99, 8));
        try (Scope s = Scope.inference()) {
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> model.encode(Ops.fromLongs(new long[] {98, 5, 99}, 1, 3)));
            assertTrue(e.getMessage().contains("text_model.embeddings.token_embedding.weight"), e.getMessage());
        }
    }
}
