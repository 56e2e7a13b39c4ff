package dev.perfusion.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.CharConversionException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * Typed reads of a model's config.json: an absent or null key takes the caller's default (the reference's) and is
 * remembered in {@link #defaulted()}; a key the model's shapes depend on has no default ({@link #requiredInteger});
 * a key of the wrong type is an error naming the config, the key and the value.
 */
public final class ConfigJson {
    /** More levels than this would downsample any image to nothing (2^15 pixels per latent pixel). */
    public static final int MAX_LEVELS = 16;
    /** Layer counts past this are not a model but a damaged file; refused before building thousands of modules. */
    public static final int MAX_LAYERS = 1000;

    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final System.Logger LOG = System.getLogger(ConfigJson.class.getName());

    private final JsonNode json;
    private final String what;
    private final Map<String, Object> defaulted = new LinkedHashMap<>();

    /** @param what the config's name in error messages, e.g. "VAE config" */
    public ConfigJson(JsonNode json, String what) {
        if (json == null || !json.isObject()) throw new IllegalArgumentException(what + " is not a JSON object");
        this.json = json;
        this.what = what;
    }

    /**
     * A config file's JSON; invalid JSON, or bytes in no Unicode encoding, is an error naming the file (Jackson's own
     * messages do not).
     */
    public static JsonNode read(Path file) throws IOException {
        try {
            return MAPPER.readTree(file.toFile());
        } catch (JsonProcessingException e) {
            throw new IOException(file + ": not valid JSON: " + e.getOriginalMessage(), e);
        } catch (CharConversionException e) {
            throw new IOException(file + ": not valid JSON: " + e.getMessage(), e);
        }
    }

    public boolean has(String key) {
        JsonNode v = json.get(key);
        return v != null && !v.isNull();
    }

    private JsonNode value(String key, Object fallback) {
        if (has(key)) return json.get(key);
        defaulted.put(key, fallback);
        return null;
    }

    /** The keys that were absent (or null) and the defaults they took, in the order they were read. */
    public Map<String, Object> defaulted() {
        return Collections.unmodifiableMap(defaulted);
    }

    /** "a=1, b=[2, 3]": the defaults taken, for messages. */
    public String defaultsText() {
        return defaulted.entrySet().stream().map(e -> e.getKey() + "=" + e.getValue()).collect(Collectors.joining(", "));
    }

    /**
     * Builds a config with {@code parse}, then logs the defaults it took ({@link #logDefaults}); a check that fails
     * on the way carries those defaults in its message ({@link #withDefaults}).
     */
    public <T> T build(Object source, java.util.function.Function<ConfigJson, T> parse) {
        try {
            T config = parse.apply(this);
            logDefaults(source);
            return config;
        } catch (IllegalArgumentException e) {
            throw withDefaults(e);
        }
    }

    /** Logs (at DEBUG) which keys took defaults, so a model built from a sparse config can be traced to them. */
    private void logDefaults(Object source) {
        if (defaulted.isEmpty()) return;
        LOG.log(System.Logger.Level.DEBUG, () -> source + ": " + what + " takes defaults for absent keys: " + defaultsText());
    }

    /**
     * {@code e} with the defaults that were taken added to its message: a check that fails on a defaulted value
     * (say block_out_channels against the default norm_num_groups) then shows where that value came from.
     */
    private IllegalArgumentException withDefaults(IllegalArgumentException e) {
        if (defaulted.isEmpty()) return e;
        return new IllegalArgumentException(e.getMessage() + " (absent keys took defaults: " + defaultsText() + ")", e);
    }

    /** {@code value} (read from {@code key}) when it is in [min, max]; otherwise an error naming the key and the range. */
    public int inRange(String key, int value, int min, int max) {
        if (value < min || value > max) {
            throw new IllegalArgumentException(what + ": " + key + " must be " + (max == Integer.MAX_VALUE ? "at least " + min
                    : "between " + min + " and " + max) + ", got " + value);
        }
        return value;
    }

    private IllegalArgumentException missing(String key) {
        return new IllegalArgumentException(what + " lacks '" + key + "', which the model's shapes depend on (no default is assumed)");
    }

    /** An integer the model's shapes depend on: absent or null is an error naming the key, never a guessed default. */
    public int requiredInteger(String key) {
        if (!has(key)) throw missing(key);
        return integer(key, 0);
    }

    /** A list of integers the model's shapes depend on, as {@link #requiredInteger}. */
    public List<Integer> requiredIntegers(String key) {
        if (!has(key)) throw missing(key);
        return integers(key, List.of());
    }

    private IllegalArgumentException wrong(String key, String expected, JsonNode v) {
        return new IllegalArgumentException(what + ": " + key + " must be " + expected + ", got " + v);
    }

    public int integer(String key, int fallback) {
        JsonNode v = value(key, fallback);
        if (v == null) return fallback;
        if (!v.isIntegralNumber() || !v.canConvertToInt()) throw wrong(key, "an integer", v);
        return v.intValue();
    }

    public long integer64(String key, long fallback) {
        JsonNode v = value(key, fallback);
        if (v == null) return fallback;
        if (!v.isIntegralNumber()) throw wrong(key, "an integer", v);
        return v.longValue();
    }

    public double number(String key, double fallback) {
        JsonNode v = value(key, fallback);
        if (v == null) return fallback;
        if (!v.isNumber()) throw wrong(key, "a number", v);
        return v.doubleValue();
    }

    public boolean flag(String key, boolean fallback) {
        JsonNode v = value(key, fallback);
        if (v == null) return fallback;
        if (!v.isBoolean()) throw wrong(key, "true or false", v);
        return v.booleanValue();
    }

    public String text(String key, String fallback) {
        JsonNode v = value(key, fallback);
        if (v == null) return fallback;
        if (!v.isTextual()) throw wrong(key, "a string", v);
        return v.textValue();
    }

    public List<String> texts(String key, List<String> fallback) {
        JsonNode v = value(key, fallback);
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
        JsonNode v = value(key, fallback);
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
        JsonNode v = has(key) ? json.get(key) : null;
        if (v != null && v.isArray()) {
            List<Integer> list = integers(key, null);
            if (list.size() != levels) throw wrong(key, "a number or a list of " + levels, v);
            return list;
        }
        return java.util.Collections.nCopies(levels, integer(key, fallback));
    }
}
