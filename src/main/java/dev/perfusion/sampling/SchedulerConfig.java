package dev.perfusion.sampling;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import dev.perfusion.io.ConfigJson;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * A diffusers scheduler_config.json as written, so that each scheduler applies its own default to the keys the
 * file lacks (what diffusers' {@code from_config} does when one scheduler is built from another's config). The keys
 * the schedulers read are checked when the config is read: type, range and the values this program supports.
 */
public final class SchedulerConfig {
    /** diffusers' schedules have 1000; a hundred times that is no schedule but a damaged file. */
    public static final int MAX_TRAIN_TIMESTEPS = 100_000;

    private final JsonNode json;

    private SchedulerConfig(JsonNode json) {
        this.json = json;
    }

    public static SchedulerConfig fromJson(JsonNode json) {
        if (json == null || !json.isObject()) throw new IllegalArgumentException("a scheduler config must be a JSON object");
        SchedulerConfig c = new SchedulerConfig(json);
        c.check();
        return c;
    }

    private static final List<String> FLAGS = List.of("set_alpha_to_one", "clip_sample", "skip_prk_steps", "use_karras_sigmas");

    private void check() {
        ConfigJson c = new ConfigJson(json, "scheduler config");
        int steps = c.inRange("num_train_timesteps", c.integer("num_train_timesteps", 1000), 2, MAX_TRAIN_TIMESTEPS);
        c.inRange("steps_offset", c.integer("steps_offset", 0), 0, steps - 1);
        for (String key : List.of("beta_start", "beta_end")) {
            double beta = c.number(key, 0.01);
            if (!(beta > 0 && beta < 1)) throw new IllegalArgumentException("scheduler config: " + key + " must be between 0 and 1, got " + beta);
        }
        double range = c.number("clip_sample_range", 1.0);
        if (!(range > 0 && range < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("scheduler config: clip_sample_range must be a positive number, got " + range);
        }
        for (String key : FLAGS) c.flag(key, false);
        oneOf(c, "beta_schedule", "linear", "scaled_linear", "squaredcos_cap_v2");
        oneOf(c, "timestep_spacing", "leading", "trailing", "linspace");
        oneOf(c, "prediction_type", "epsilon", "v_prediction");
        c.text("algorithm_type", "dpmsolver++");
    }

    private static void oneOf(ConfigJson c, String key, String... supported) {
        String v = c.text(key, supported[0]);
        if (!List.of(supported).contains(v)) {
            throw new IllegalArgumentException("scheduler config: unsupported " + key + " '" + v + "' (supported: "
                    + String.join(", ", supported) + ")");
        }
    }

    /** A config with every key at the scheduler's default. */
    public static SchedulerConfig empty() {
        return new SchedulerConfig(JsonNodeFactory.instance.objectNode());
    }

    public static SchedulerConfig load(Path file) throws IOException {
        Path f = Files.isDirectory(file) ? file.resolve("scheduler_config.json") : file;
        try {
            return fromJson(ConfigJson.read(f));
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
