package dev.perfusion.io.layout;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Reads config.json values with the reference's defaults for absent or null keys; a value of the wrong type is an
 * error naming the key (a string where a number belongs was read as 0).
 */
final class ConfigValues {
    private ConfigValues() {}

    /**
     * A block or layer number from a tensor name; one past any int (a damaged or hostile name) reads as
     * Integer.MAX_VALUE, beyond every model, instead of failing the parse.
     */
    static int index(String digits) {
        return digits.length() > 9 ? Integer.MAX_VALUE : Integer.parseInt(digits);
    }

    static boolean present(JsonNode config, String key) {
        JsonNode v = config.get(key);
        return v != null && !v.isNull();
    }

    private static IllegalArgumentException wrong(String key, String expected, JsonNode v) {
        return new IllegalArgumentException("config key " + key + " must be " + expected + ", got " + v);
    }

    private static int toInt(String key, JsonNode v) {
        if (!v.isIntegralNumber() || !v.canConvertToInt()) throw wrong(key, "an integer", v);
        return v.intValue();
    }

    static int integer(JsonNode config, String key, int fallback) {
        return present(config, key) ? toInt(key, config.get(key)) : fallback;
    }

    static boolean bool(JsonNode config, String key, boolean fallback) {
        if (!present(config, key)) return fallback;
        if (!config.get(key).isBoolean()) throw wrong(key, "true or false", config.get(key));
        return config.get(key).booleanValue();
    }

    static String text(JsonNode config, String key, String fallback) {
        if (!present(config, key)) return fallback;
        if (!config.get(key).isTextual()) throw wrong(key, "a string", config.get(key));
        return config.get(key).textValue();
    }

    static List<Integer> integers(JsonNode config, String key, Integer... fallback) {
        if (!present(config, key)) return Arrays.asList(fallback);
        if (!config.get(key).isArray()) throw wrong(key, "a list of integers", config.get(key));
        List<Integer> out = new ArrayList<>();
        config.get(key).forEach(v -> out.add(toInt(key, v)));
        return out;
    }

    /** A list the weights' shapes depend on: absent is an error naming the key and the config, never a default. */
    static List<Integer> requiredIntegers(JsonNode config, String key, String what) {
        if (!present(config, key)) {
            throw new IllegalArgumentException(what + " config lacks '" + key + "', which the model's shapes depend on (no default is assumed)");
        }
        return integers(config, key);
    }

    static List<String> texts(JsonNode config, String key, String... fallback) {
        if (!present(config, key)) return Arrays.asList(fallback);
        if (!config.get(key).isArray()) throw wrong(key, "a list of strings", config.get(key));
        List<String> out = new ArrayList<>();
        config.get(key).forEach(v -> {
            if (!v.isTextual()) throw wrong(key, "a list of strings", config.get(key));
            out.add(v.textValue());
        });
        return out;
    }

    /** A per-level value that a config may give as one number or as a list with one entry per level. */
    static int[] perLevel(JsonNode config, String key, int fallback, int levels, String what) {
        int[] out = new int[levels];
        if (present(config, key) && config.get(key).isArray()) {
            if (config.get(key).size() != levels) {
                throw new IllegalArgumentException(what + " config: " + key + " has " + config.get(key).size()
                        + " entries for " + levels + " levels");
            }
            for (int i = 0; i < levels; i++) out[i] = toInt(key, config.get(key).get(i));
        } else {
            Arrays.fill(out, integer(config, key, fallback));
        }
        return out;
    }
}
