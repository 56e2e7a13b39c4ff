package dev.perfusion.io;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;

/**
 * Typed reads of a model's config.json: an absent or null key takes the caller's default (the reference's),
 * a key of the wrong type is an error naming the config, the key and the value.
 */
public final class ConfigJson {
    private final JsonNode json;
    private final String what;

    /** @param what the config's name in error messages, e.g. "VAE config" */
    public ConfigJson(JsonNode json, String what) {
        if (json == null || !json.isObject()) throw new IllegalArgumentException(what + " is not a JSON object");
        this.json = json;
        this.what = what;
    }

    public boolean has(String key) {
        JsonNode v = json.get(key);
        return v != null && !v.isNull();
    }

    private JsonNode value(String key) {
        return has(key) ? json.get(key) : null;
    }

    private IllegalArgumentException wrong(String key, String expected, JsonNode v) {
        return new IllegalArgumentException(what + ": " + key + " must be " + expected + ", got " + v);
    }

    public int integer(String key, int fallback) {
        JsonNode v = value(key);
        if (v == null) return fallback;
        if (!v.isIntegralNumber() || !v.canConvertToInt()) throw wrong(key, "an integer", v);
        return v.intValue();
    }

    public long integer64(String key, long fallback) {
        JsonNode v = value(key);
        if (v == null) return fallback;
        if (!v.isIntegralNumber()) throw wrong(key, "an integer", v);
        return v.longValue();
    }

    public double number(String key, double fallback) {
        JsonNode v = value(key);
        if (v == null) return fallback;
        if (!v.isNumber()) throw wrong(key, "a number", v);
        return v.doubleValue();
    }

    public boolean flag(String key, boolean fallback) {
        JsonNode v = value(key);
        if (v == null) return fallback;
        if (!v.isBoolean()) throw wrong(key, "true or false", v);
        return v.booleanValue();
    }

    public String text(String key, String fallback) {
        JsonNode v = value(key);
        if (v == null) return fallback;
        if (!v.isTextual()) throw wrong(key, "a string", v);
        return v.textValue();
    }

    public List<String> texts(String key, List<String> fallback) {
        JsonNode v = value(key);
        if (v == null) return fallback;
        if (!v.isArray()) throw wrong(key, "a list", v);
        List<String> out = new ArrayList<>();
        for (JsonNode e : v) {
            if (!e.isTextual()) throw wrong(key, "a list of strings", v);
            out.add(e.textValue());
        }
        return List.copyOf(out);
    }

    public List<Integer> integers(String key, List<Integer> fallback) {
        JsonNode v = value(key);
        if (v == null) return fallback;
        if (!v.isArray()) throw wrong(key, "a list", v);
        List<Integer> out = new ArrayList<>();
        for (JsonNode e : v) {
            if (!e.isIntegralNumber() || !e.canConvertToInt()) throw wrong(key, "a list of integers", v);
            out.add(e.intValue());
        }
        return List.copyOf(out);
    }

    /** An int or a list with one int per level (diffusers' per-block settings). */
    public List<Integer> perLevel(String key, int fallback, int levels) {
        JsonNode v = value(key);
        if (v != null && v.isArray()) {
            List<Integer> list = integers(key, null);
            if (list.size() != levels) throw wrong(key, "a number or a list of " + levels, v);
            return list;
        }
        return java.util.Collections.nCopies(levels, integer(key, fallback));
    }
}
