package dev.perfusion.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.CharConversionException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import java.util.stream.Collectors;

/**
 * The one reader of config files (diffusers' and transformers' config.json, scheduler_config.json), with one policy:
 * <ul>
 * <li>an absent or null key takes the config's default (the reference's), and the defaults taken are logged and named
 * in any refusal that follows, so a value that came from a default can be traced to it;</li>
 * <li>a key the model's shapes depend on has no default ({@link #requiredInteger});</li>
 * <li>a value of the wrong type, or out of range, or not among the supported ones, is refused with a message naming
 * the file, the key, the value and what was expected;</li>
 * <li>keys no config reads are ignored, since diffusers and transformers add keys from version to version, and
 * logged once per key (keys starting with '_', such as {@code _class_name}, are metadata and not logged).</li>
 * </ul>
 * Logs go to the {@code System.Logger} of this class at DEBUG.
 */
public final class ConfigJson {
    /** More levels than this would downsample any image to nothing (2^15 pixels per latent pixel). */
    public static final int MAX_LEVELS = 16;
    /** Layer counts past this are not a model but a damaged file; refused before building thousands of modules. */
    public static final int MAX_LAYERS = 1000;

    /** diffusers writes configs with Python's json, which writes infinities as -Infinity (DPM-Solver's lambda_min_clipped). */
    private static final ObjectMapper MAPPER = com.fasterxml.jackson.databind.json.JsonMapper.builder()
            .enable(com.fasterxml.jackson.core.json.JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS).build();
    private static final System.Logger LOG = System.getLogger(ConfigJson.class.getName());
    /** The ignored keys already logged, per config kind; bounded, so that a fuzzer's endless new keys cannot fill memory. */
    private static final Set<String> LOGGED_IGNORED = Collections.synchronizedSet(new HashSet<>());
    private static final int MAX_LOGGED_IGNORED = 1000;

    private final JsonNode json;
    private final String what;
    private final Path file;
    private final Map<String, Object> defaulted = new LinkedHashMap<>();
    private final Set<String> read = new HashSet<>();

    private ConfigJson(JsonNode json, String what, Path file) {
        this.json = json;
        this.what = what;
        this.file = file;
    }

    /**
     * A file's JSON object; invalid JSON, bytes in no Unicode encoding, or another JSON value than an object is an
     * error naming the file (Jackson's own messages do not).
     */
    public static JsonNode read(Path file) throws IOException {
        JsonNode node;
        try {
            node = MAPPER.readTree(file.toFile());
        } catch (JsonProcessingException e) {
            throw new IOException(file + ": not valid JSON: " + e.getOriginalMessage(), e);
        } catch (CharConversionException e) {
            throw new IOException(file + ": not valid JSON: " + e.getMessage(), e);
        }
        if (node == null || !node.isObject()) throw new IOException(file + ": not a JSON object");
        return node;
    }

    /** {@code path} when it is a file, else {@code fileName} inside the folder {@code path}; it must exist. */
    public static Path file(Path path, String fileName, String what) throws IOException {
        Path file = Files.isDirectory(path) ? path.resolve(fileName) : path;
        if (!Files.isRegularFile(file)) throw new IOException("no " + what + " at " + file);
        return file;
    }

    /** Reads a config file (or {@code fileName} inside a folder) and builds its config with {@code parse}. */
    public static <T> T load(Path path, String fileName, String what, Function<ConfigJson, T> parse) throws IOException {
        Path file = file(path, fileName, what);
        return parse(read(file), what, file, parse);
    }

    /**
     * Builds a config with {@code parse}, then logs the defaults it took and the keys it ignored. A refusal on the way
     * names {@code file} (null for JSON made in code or built into the program) and the defaults taken so far.
     *
     * @param what the config's name in messages, e.g. "VAE config"
     */
    public static <T> T parse(JsonNode json, String what, Path file, Function<ConfigJson, T> parse) {
        if (json == null || !json.isObject()) throw new IllegalArgumentException(where(file) + what + " is not a JSON object");
        ConfigJson c = new ConfigJson(json, what, file);
        T config;
        try {
            config = parse.apply(c);
        } catch (IllegalArgumentException e) {
            throw c.refusal(e);
        }
        c.log();
        return config;
    }

    private static String where(Path file) {
        return file == null ? "" : file + ": ";
    }

    /** The refusal {@code e} with the file named in front and the defaults taken after (a failing check may involve them). */
    private IllegalArgumentException refusal(IllegalArgumentException e) {
        if (file == null && defaulted.isEmpty()) return e;
        return new IllegalArgumentException(where(file) + e.getMessage()
                + (defaulted.isEmpty() ? "" : " (absent keys took defaults: " + defaultsText() + ")"), e);
    }

    private void log() {
        if (!defaulted.isEmpty()) {
            LOG.log(System.Logger.Level.DEBUG, () -> where(file) + what + " takes defaults for absent keys: " + defaultsText());
        }
        List<String> ignored = new ArrayList<>();
        json.fields().forEachRemaining(e -> {
            String key = e.getKey();
            if (read.contains(key) || key.startsWith("_") || e.getValue().isNull()) return;
            if (LOGGED_IGNORED.size() < MAX_LOGGED_IGNORED && LOGGED_IGNORED.add(what + "\0" + key)) {
                ignored.add(key + "=" + e.getValue());
            }
        });
        if (!ignored.isEmpty()) {
            LOG.log(System.Logger.Level.DEBUG, () -> where(file) + what + " ignores keys this program does not read: "
                    + String.join(", ", ignored));
        }
    }

    private String defaultsText() {
        return defaulted.entrySet().stream().map(e -> e.getKey() + "=" + e.getValue()).collect(Collectors.joining(", "));
    }

    /** Whether {@code key} is set (present and not null). */
    public boolean has(String key) {
        read.add(key);
        JsonNode v = json.get(key);
        return v != null && !v.isNull();
    }

    /** Whether {@code key} is present with the value null, which some keys use for "none" (diffusers' mid_block_type). */
    public boolean isExplicitNull(String key) {
        read.add(key);
        return json.has(key) && json.get(key).isNull();
    }

    private JsonNode value(String key, Object fallback) {
        if (has(key)) return json.get(key);
        defaulted.put(key, fallback);
        return null;
    }

    /** A refusal naming the key, what it must be and the value found. */
    public IllegalArgumentException refuse(String key, String expected, Object value) {
        return new IllegalArgumentException(what + ": " + key + " must be " + expected + ", got " + value);
    }

    /** {@code value} (read from {@code key}) when it is in [min, max]; otherwise an error naming the key and the range. */
    public int inRange(String key, int value, int min, int max) {
        return requireInRange(what, key, value, min, max);
    }

    /** {@code value} when it is in [min, max]; otherwise an error naming the config, the key and the range. */
    public static int requireInRange(String what, String key, int value, int min, int max) {
        if (value < min || value > max) {
            throw new IllegalArgumentException(what + ": " + key + " must be " + (max == Integer.MAX_VALUE ? "at least " + min
                    : "between " + min + " and " + max) + ", got " + value);
        }
        return value;
    }

    /** {@code value} (read from {@code key}) when it is strictly between low and high (high may be infinite). */
    public double inOpenRange(String key, double value, double low, double high) {
        return requireInOpenRange(what, key, value, low, high);
    }

    /** {@code value} when it is strictly between low and high, so never NaN; high may be infinite. */
    public static double requireInOpenRange(String what, String key, double value, double low, double high) {
        if (!(value > low && value < high)) {
            throw new IllegalArgumentException(what + ": " + key + " must be " + (high == Double.POSITIVE_INFINITY
                    ? "a finite number above " + plain(low) : "between " + plain(low) + " and " + plain(high)) + ", got " + value);
        }
        return value;
    }

    /** 0 rather than 0.0 in messages. */
    private static String plain(double x) {
        return x == Math.rint(x) && Math.abs(x) < 1e15 ? Long.toString((long) x) : Double.toString(x);
    }

    /** {@code value} (read from {@code key}) when it is one of {@code supported}; otherwise an error listing them. */
    public String requireOneOf(String key, String value, Collection<String> supported) {
        return requireOneOf(what, key, value, supported);
    }

    /** {@code value} when it is one of {@code supported}; otherwise an error naming the config, the key and them. */
    public static String requireOneOf(String what, String key, String value, Collection<String> supported) {
        if (!supported.contains(value)) {
            throw new IllegalArgumentException(what + ": unsupported " + key + " '" + value + "' (supported: "
                    + String.join(", ", supported) + ")");
        }
        return value;
    }

    /** A string that must be one of {@code supported}; absent takes {@code fallback}. */
    public String oneOf(String key, String fallback, Collection<String> supported) {
        return requireOneOf(key, text(key, fallback), supported);
    }

    /** Refuses {@code key} when it is set: it turns on a feature this program does not build (absent or null is off). */
    public void requireUnset(String key) {
        if (has(key)) throw refuse(key, "absent or null (the feature is not supported)", json.get(key));
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

    public int integer(String key, int fallback) {
        JsonNode v = value(key, fallback);
        if (v == null) return fallback;
        if (!v.isIntegralNumber() || !v.canConvertToInt()) throw refuse(key, "an integer", v);
        return v.intValue();
    }

    public long integer64(String key, long fallback) {
        JsonNode v = value(key, fallback);
        if (v == null) return fallback;
        if (!v.isIntegralNumber() || !v.canConvertToLong()) throw refuse(key, "an integer", v);
        return v.longValue();
    }

    public double number(String key, double fallback) {
        JsonNode v = value(key, fallback);
        if (v == null) return fallback;
        if (!v.isNumber() || !Double.isFinite(v.doubleValue())) throw refuse(key, "a finite number", v.isNumber() ? v.doubleValue() : v);
        return v.doubleValue();
    }

    public boolean flag(String key, boolean fallback) {
        JsonNode v = value(key, fallback);
        if (v == null) return fallback;
        if (!v.isBoolean()) throw refuse(key, "true or false", v);
        return v.booleanValue();
    }

    public String text(String key, String fallback) {
        JsonNode v = value(key, fallback);
        if (v == null) return fallback;
        if (!v.isTextual()) throw refuse(key, "a string", v);
        return v.textValue();
    }

    public List<String> texts(String key, List<String> fallback) {
        JsonNode v = value(key, fallback);
        if (v == null) return fallback;
        if (!v.isArray()) throw refuse(key, "a list of strings", v);
        List<String> out = new ArrayList<>();
        for (JsonNode e : v) {
            if (!e.isTextual()) throw refuse(key, "a list of strings", v);
            out.add(e.textValue());
        }
        return List.copyOf(out);
    }

    public List<Integer> integers(String key, List<Integer> fallback) {
        JsonNode v = value(key, fallback);
        if (v == null) return fallback;
        if (!v.isArray()) throw refuse(key, "a list of integers", v);
        List<Integer> out = new ArrayList<>();
        for (JsonNode e : v) {
            if (!e.isIntegralNumber() || !e.canConvertToInt()) throw refuse(key, "a list of integers", v);
            out.add(e.intValue());
        }
        return List.copyOf(out);
    }

    /** An int or a list with one int per level (diffusers' per-block settings). */
    public List<Integer> perLevel(String key, int fallback, int levels) {
        if (has(key) && json.get(key).isArray()) {
            List<Integer> list = integers(key, null);
            if (list.size() != levels) throw refuse(key, "a number or a list of " + levels + " (one per level)", json.get(key));
            return list;
        }
        return Collections.nCopies(levels, integer(key, fallback));
    }

    /**
     * A per-level setting ({@link #perLevel}) that this program builds as one number for every level: a list is
     * accepted when its entries are all equal, and refused, by name, when they differ.
     */
    public int sameOnEveryLevel(String key, int fallback, int levels) {
        List<Integer> values = perLevel(key, fallback, levels);
        if (new LinkedHashSet<>(values).size() > 1) {
            throw refuse(key, "one number, or a list with the same number for every level (levels with different"
                    + " counts are not supported)", values);
        }
        return values.get(0);
    }
}
