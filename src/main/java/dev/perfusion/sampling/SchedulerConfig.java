package dev.perfusion.sampling;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A diffusers scheduler_config.json as written, so that each scheduler applies its own default to the keys the
 * file lacks (what diffusers' {@code from_config} does when one scheduler is built from another's config).
 */
public final class SchedulerConfig {
    private final JsonNode json;

    private SchedulerConfig(JsonNode json) {
        this.json = json;
    }

    public static SchedulerConfig fromJson(JsonNode json) {
        if (json == null || !json.isObject()) throw new IllegalArgumentException("a scheduler config must be a JSON object");
        return new SchedulerConfig(json);
    }

    /** A config with every key at the scheduler's default. */
    public static SchedulerConfig empty() {
        return new SchedulerConfig(JsonNodeFactory.instance.objectNode());
    }

    public static SchedulerConfig load(Path file) throws IOException {
        Path f = Files.isDirectory(file) ? file.resolve("scheduler_config.json") : file;
        try {
            return fromJson(new ObjectMapper().readTree(f.toFile()));
        } catch (JsonProcessingException e) {
            throw new IOException(f + ": not valid JSON: " + e.getOriginalMessage());
        } catch (IllegalArgumentException e) {
            throw new IOException(f + ": " + e.getMessage());
        }
    }

    public double number(String key, double dflt) {
        JsonNode v = json.get(key);
        return v == null || v.isNull() ? dflt : v.asDouble();
    }

    public int integer(String key, int dflt) {
        JsonNode v = json.get(key);
        return v == null || v.isNull() ? dflt : v.asInt();
    }

    public boolean flag(String key, boolean dflt) {
        JsonNode v = json.get(key);
        return v == null || v.isNull() ? dflt : v.asBoolean();
    }

    public String text(String key, String dflt) {
        JsonNode v = json.get(key);
        return v == null || v.isNull() ? dflt : v.asText();
    }

    public JsonNode json() { return json; }

    /** epsilon or v_prediction; anything else is refused. */
    public String predictionType() {
        String p = text("prediction_type", "epsilon");
        if (!p.equals("epsilon") && !p.equals("v_prediction")) {
            throw new IllegalArgumentException("unsupported prediction_type '" + p + "' (epsilon or v_prediction)");
        }
        return p;
    }
}
