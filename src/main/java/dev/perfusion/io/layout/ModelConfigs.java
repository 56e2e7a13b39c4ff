package dev.perfusion.io.layout;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * The diffusers config files of one model: UNet, VAE, text encoder, scheduler and (optionally) tokenizer. They
 * come from a diffusers folder ({@code unet/config.json}, {@code vae/config.json}, {@code text_encoder/config.json},
 * {@code scheduler/scheduler_config.json}, {@code tokenizer/tokenizer_config.json} + {@code special_tokens_map.json})
 * or from the built-in copies shipped for the recognised families under {@code /dev/perfusion/configs/<family>/}
 * in the same layout.
 *
 * @param tokenizer tokenizer_config.json with special_tokens_map.json laid over it (the special tokens map wins,
 *                  as in transformers); empty when the folder has neither
 * @param origin    where the configs come from, for messages: a folder or "built-in &lt;family&gt; configs"
 * @param folder    the folder they were read from; empty for built-in configs
 */
public record ModelConfigs(JsonNode unet, JsonNode vae, JsonNode textEncoder, JsonNode scheduler,
                           Optional<JsonNode> tokenizer, String origin, Optional<Path> folder) {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String RESOURCES = "/dev/perfusion/configs/";

    /** Reads the configs of a diffusers folder; every component config must be present. */
    public static ModelConfigs fromFolder(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) throw new IOException(dir + ": no such folder (expected a diffusers folder with config files)");
        JsonNode unet = required(dir, "unet/config.json");
        JsonNode vae = required(dir, "vae/config.json");
        JsonNode textEncoder = required(dir, "text_encoder/config.json");
        JsonNode scheduler = Files.isRegularFile(dir.resolve("scheduler/scheduler_config.json"))
                ? read(dir.resolve("scheduler/scheduler_config.json"))
                : required(dir, "scheduler/config.json");
        Optional<JsonNode> tokenizer = tokenizerConfig(dir.resolve("tokenizer"));
        return new ModelConfigs(unet, vae, textEncoder, scheduler, tokenizer, dir.toString(), Optional.of(dir));
    }

    /** The shipped configs of a built-in family ({@link ModelFamily#BUILT_IN}). */
    public static ModelConfigs builtIn(String family) {
        if (!ModelFamily.BUILT_IN.contains(family)) {
            throw new IllegalArgumentException("no built-in configs for model family '" + family + "' (built in: "
                    + String.join(", ", ModelFamily.BUILT_IN) + ")");
        }
        String base = RESOURCES + family + "/";
        JsonNode tokenizer = resource(base + "tokenizer/tokenizer_config.json");
        ((ObjectNode) tokenizer).setAll((ObjectNode) resource(base + "tokenizer/special_tokens_map.json"));
        return new ModelConfigs(resource(base + "unet/config.json"), resource(base + "vae/config.json"),
                resource(base + "text_encoder/config.json"), resource(base + "scheduler/scheduler_config.json"),
                Optional.of(tokenizer), "built-in " + family + " configs", Optional.empty());
    }

    /** tokenizer_config.json with special_tokens_map.json over it, from a tokenizer folder; empty if neither exists. */
    static Optional<JsonNode> tokenizerConfig(Path tokenizerDir) throws IOException {
        Path config = tokenizerDir.resolve("tokenizer_config.json");
        Path special = tokenizerDir.resolve("special_tokens_map.json");
        if (!Files.isRegularFile(config) && !Files.isRegularFile(special)) return Optional.empty();
        ObjectNode merged = JSON.createObjectNode();
        if (Files.isRegularFile(config)) merged.setAll(object(config));
        if (Files.isRegularFile(special)) merged.setAll(object(special));
        return Optional.of(merged);
    }

    private static JsonNode required(Path dir, String relative) throws IOException {
        Path file = dir.resolve(relative);
        if (!Files.isRegularFile(file)) {
            throw new IOException(dir + ": missing " + relative + " (a diffusers folder has unet/, vae/, text_encoder/"
                    + " and scheduler/ config files)");
        }
        return read(file);
    }

    private static ObjectNode object(Path file) throws IOException {
        JsonNode node = read(file);
        if (!node.isObject()) throw new IOException(file + ": not a JSON object");
        return (ObjectNode) node;
    }

    static JsonNode read(Path file) throws IOException {
        try {
            JsonNode node = JSON.readTree(file.toFile());
            if (node == null || !node.isObject()) throw new IOException(file + ": not a JSON object");
            return node;
        } catch (JsonProcessingException e) {
            throw new IOException(file + ": invalid JSON: " + e.getOriginalMessage());
        } catch (java.io.CharConversionException e) { // bytes in no Unicode encoding Jackson detects
            throw new IOException(file + ": invalid JSON: " + e.getMessage());
        }
    }

    private static JsonNode resource(String name) {
        try (InputStream in = ModelConfigs.class.getResourceAsStream(name)) {
            if (in == null) throw new IllegalStateException("built-in config " + name + " is missing from the build");
            return JSON.readTree(in);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read built-in config " + name, e);
        }
    }
}
