package dev.perfusion.text;

import dev.perfusion.io.ConfigJson;
import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.nio.file.Path;

/**
 * Hyper-parameters of transformers' {@code CLIPTextModel}, as stored in a diffusers {@code text_encoder/config.json}.
 * Absent keys take transformers v4.31's {@code CLIPTextConfig} defaults (see {@link #defaults()}), except those the
 * weights' shapes depend on (vocab_size, hidden_size, intermediate_size, max_position_embeddings), which must be present.
 *
 * <p>The token ids are recorded, not used by the encoder: SD 1.x/2.x configs carry stale values (bos 0, eos 2)
 * copied from older CLIP exports, and Stable Diffusion keeps all 77 outputs rather than pooling at the eos token.
 * {@code projectionDim} belongs to the projection head of CLIPTextModelWithProjection, which SD does not use.
 */
public record ClipTextConfig(
        int vocabSize,
        int hiddenSize,
        int intermediateSize,
        int numHiddenLayers,
        int numAttentionHeads,
        int maxPositionEmbeddings,
        String hiddenAct,
        double layerNormEps,
        long bosTokenId,
        long eosTokenId,
        long padTokenId,
        int projectionDim) {

    private static final String WHAT = "text encoder config";

    public ClipTextConfig {
        ConfigJson.requireInRange(WHAT, "vocab_size", vocabSize, 1, Integer.MAX_VALUE);
        ConfigJson.requireInRange(WHAT, "hidden_size", hiddenSize, 1, Integer.MAX_VALUE);
        ConfigJson.requireInRange(WHAT, "intermediate_size", intermediateSize, 1, Integer.MAX_VALUE);
        ConfigJson.requireInRange(WHAT, "num_hidden_layers", numHiddenLayers, 1, ConfigJson.MAX_LAYERS);
        ConfigJson.requireInRange(WHAT, "num_attention_heads", numAttentionHeads, 1, Integer.MAX_VALUE);
        ConfigJson.requireInRange(WHAT, "max_position_embeddings", maxPositionEmbeddings, 1, Integer.MAX_VALUE);
        if (hiddenSize % numAttentionHeads != 0) {
            throw new IllegalArgumentException(WHAT + ": hidden_size " + hiddenSize
                    + " is not divisible by num_attention_heads " + numAttentionHeads);
        }
        ConfigJson.requireInOpenRange(WHAT, "layer_norm_eps", layerNormEps, 0, Double.POSITIVE_INFINITY);
        ClipActivation.named(hiddenAct);
    }

    /** transformers v4.31 {@code CLIPTextConfig()}: the text tower of openai/clip-vit-base-patch32. */
    public static ClipTextConfig defaults() {
        return new ClipTextConfig(49408, 512, 2048, 12, 8, 77, "quick_gelu", 1e-5, 49406, 49407, 1, 512);
    }

    public int headDim() { return hiddenSize / numAttentionHeads; }

    public ClipActivation activation() { return ClipActivation.named(hiddenAct); }

    /** Reads a config.json file, or the config.json inside a text_encoder folder. */
    public static ClipTextConfig load(Path path) throws IOException {
        Path file = ConfigJson.file(path, "config.json", WHAT);
        return fromJson(ConfigJson.read(file), file);
    }

    /**
     * Parses a {@code clip_text_model} config; a full {@code clip} config (text and vision towers) contributes
     * its {@code text_config}, as {@code CLIPTextConfig.from_pretrained} does.
     */
    public static ClipTextConfig fromJson(JsonNode json) {
        return fromJson(json, null);
    }

    private static ClipTextConfig fromJson(JsonNode json, Path file) {
        // transformers writes a nested text_config as its difference from the defaults, so there they are the reference
        boolean nested = json != null && "clip".equals(json.path("model_type").asText()) && json.has("text_config");
        return ConfigJson.parse(nested ? json.get("text_config") : json, nested ? "text_config of a CLIP config" : WHAT,
                file, c -> parse(c, nested));
    }

    private static ClipTextConfig parse(ConfigJson c, boolean nested) {
        ClipTextConfig d = defaults();
        java.util.function.ToIntBiFunction<String, Integer> shape = (key, dflt) -> nested ? c.integer(key, dflt) : c.requiredInteger(key);
        return new ClipTextConfig(
                shape.applyAsInt("vocab_size", d.vocabSize),
                shape.applyAsInt("hidden_size", d.hiddenSize),
                shape.applyAsInt("intermediate_size", d.intermediateSize),
                c.integer("num_hidden_layers", d.numHiddenLayers),
                c.integer("num_attention_heads", d.numAttentionHeads),
                shape.applyAsInt("max_position_embeddings", d.maxPositionEmbeddings),
                c.text("hidden_act", d.hiddenAct),
                c.number("layer_norm_eps", d.layerNormEps),
                c.integer64("bos_token_id", d.bosTokenId),
                c.integer64("eos_token_id", d.eosTokenId),
                c.integer64("pad_token_id", d.padTokenId),
                c.integer("projection_dim", d.projectionDim));
    }
}
