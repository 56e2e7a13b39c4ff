package dev.perfusion.io.layout;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Reads config.json values with the reference's defaults for absent or null keys. */
final class ConfigValues {
    private ConfigValues() {}

    static boolean present(JsonNode config, String key) {
        JsonNode v = config.get(key);
        return v != null && !v.isNull();
    }

    static int integer(JsonNode config, String key, int fallback) {
        return present(config, key) ? config.get(key).asInt() : fallback;
    }

    static boolean bool(JsonNode config, String key, boolean fallback) {
        return present(config, key) ? config.get(key).asBoolean() : fallback;
    }

    static String text(JsonNode config, String key, String fallback) {
        return present(config, key) ? config.get(key).asText() : fallback;
    }

    static List<Integer> integers(JsonNode config, String key, Integer... fallback) {
        if (!present(config, key)) return Arrays.asList(fallback);
        List<Integer> out = new ArrayList<>();
        config.get(key).forEach(v -> out.add(v.asInt()));
        return out;
    }

    static List<String> texts(JsonNode config, String key, String... fallback) {
        if (!present(config, key)) return Arrays.asList(fallback);
        List<String> out = new ArrayList<>();
        config.get(key).forEach(v -> out.add(v.asText()));
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
            for (int i = 0; i < levels; i++) out[i] = config.get(key).get(i).asInt();
        } else {
            Arrays.fill(out, integer(config, key, fallback));
        }
        return out;
    }
}
