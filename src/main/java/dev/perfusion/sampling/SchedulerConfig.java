package dev.perfusion.sampling;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.perfusion.io.ConfigJson;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * A diffusers scheduler_config.json, read and checked once: type, range and the values this program supports. Most
 * keys have one default in every diffusers scheduler class; the few whose default differs between classes are kept as
 * written (empty when absent), and each scheduler takes them with its class's defaults ({@link ClassDefaults}), as
 * diffusers' {@code from_config} does when one scheduler is built from another's config.
 *
 * @param json          the config as written, for building another config from it
 * @param algorithmType checked by the one scheduler that reads it: the config may serve the others
 */
public record SchedulerConfig(JsonNode json, int numTrainTimesteps, double betaStart, double betaEnd, String betaSchedule,
                              String predictionType, int stepsOffset, double clipSampleRange, boolean useKarrasSigmas,
                              boolean skipPrkSteps, String algorithmType, Optional<String> timestepSpacing,
                              Optional<Boolean> setAlphaToOne, Optional<Boolean> clipSample) {
    /** diffusers' schedules have 1000; a hundred times that is no schedule but a damaged file. */
    public static final int MAX_TRAIN_TIMESTEPS = 100_000;
    private static final String WHAT = "scheduler config";

    /** The defaults in which diffusers' scheduler classes differ (v0.27.2), for the keys each class reads. */
    public enum ClassDefaults {
        DDIM("leading", true, true),
        PNDM("leading", false, false),
        EULER("linspace", false, false),
        DPM_SOLVER("linspace", false, false);

        final String timestepSpacing;
        final boolean setAlphaToOne;
        final boolean clipSample;

        ClassDefaults(String timestepSpacing, boolean setAlphaToOne, boolean clipSample) {
            this.timestepSpacing = timestepSpacing;
            this.setAlphaToOne = setAlphaToOne;
            this.clipSample = clipSample;
        }
    }

    public static SchedulerConfig fromJson(JsonNode json) {
        return parse(json, null);
    }

    private static SchedulerConfig parse(JsonNode json, Path file) {
        return ConfigJson.parse(json, WHAT, file, c -> {
            int steps = c.inRange("num_train_timesteps", c.integer("num_train_timesteps", 1000), 2, MAX_TRAIN_TIMESTEPS);
            // each changes every scheduler's noise levels or update; ignored, a model trained with one drew wrong pictures
            c.requireUnset("trained_betas");
            for (String off : List.of("rescale_betas_zero_snr", "thresholding")) {
                if (c.flag(off, false)) throw c.refuse(off, "false (the feature is not supported)", true);
            }
            return new SchedulerConfig(json, steps,
                    c.inOpenRange("beta_start", c.number("beta_start", 0.0001), 0, 1),
                    c.inOpenRange("beta_end", c.number("beta_end", 0.02), 0, 1),
                    c.oneOf("beta_schedule", "linear", List.of("linear", "scaled_linear", "squaredcos_cap_v2")),
                    c.oneOf("prediction_type", "epsilon", List.of("epsilon", "v_prediction")),
                    c.inRange("steps_offset", c.integer("steps_offset", 0), 0, steps - 1),
                    c.inOpenRange("clip_sample_range", c.number("clip_sample_range", 1.0), 0, Double.POSITIVE_INFINITY),
                    c.flag("use_karras_sigmas", false), c.flag("skip_prk_steps", false),
                    c.text("algorithm_type", "dpmsolver++"),
                    c.has("timestep_spacing")
                            ? Optional.of(c.oneOf("timestep_spacing", null, List.of("leading", "trailing", "linspace")))
                            : Optional.empty(),
                    c.has("set_alpha_to_one") ? Optional.of(c.flag("set_alpha_to_one", false)) : Optional.empty(),
                    c.has("clip_sample") ? Optional.of(c.flag("clip_sample", false)) : Optional.empty());
        });
    }

    /** A config with every key at the scheduler's default. */
    public static SchedulerConfig empty() {
        return fromJson(JsonNodeFactory.instance.objectNode());
    }

    /** Reads a scheduler_config.json file, or the one inside a scheduler folder; a refusal is an IOException naming it. */
    public static SchedulerConfig load(Path path) throws IOException {
        Path file = ConfigJson.file(path, "scheduler_config.json", WHAT);
        JsonNode json = ConfigJson.read(file);
        try {
            return parse(json, file);
        } catch (IllegalArgumentException e) {
            throw new IOException(e.getMessage(), e);
        }
    }

    /**
     * The config as diffusers' StableDiffusionPipeline uses a model folder's: configs written before {@code steps_offset}
     * and {@code clip_sample} were (the first SD 1.x folders) are set to {@code steps_offset} 1 and {@code clip_sample}
     * false (true, DDIM's and DDPM's default, clips each step's x0 to [-1, 1] in latent space: washed-out pictures).
     * What changed is said in {@code notes}.
     */
    public SchedulerConfig asPipelineUsesIt(Consumer<String> notes) {
        List<String> changed = new ArrayList<>();
        ObjectNode fixed = json.isObject() ? ((ObjectNode) json).deepCopy() : JsonNodeFactory.instance.objectNode();
        if (stepsOffset != 1) {
            fixed.put("steps_offset", 1);
            changed.add("steps_offset " + stepsOffset + " -> 1");
        }
        // set true, or true by the default of the classes that have it (DDIM, DDPM); the others have no clip_sample
        boolean clips = clipSample.orElse(List.of("DDIMScheduler", "DDPMScheduler").contains(json.path("_class_name").asText()));
        if (clips) {
            fixed.put("clip_sample", false);
            changed.add("clip_sample true -> false");
        }
        if (changed.isEmpty()) return this;
        notes.accept("the scheduler config is out of date: " + String.join(", ", changed) + ", as diffusers' pipeline sets it");
        return fromJson(fixed);
    }

    /**
     * Refuses, naming it, a key that the scheduler {@code name} reads in diffusers while this program computes only its
     * default ({@code null}: unset): ignored, a config that sets it drew other pictures than diffusers without a word.
     * Keys of other schedulers are read past, as diffusers does when one scheduler is built from another's config.
     */
    public void requireDefault(String name, String key, Object value) {
        JsonNode v = json.get(key);
        if (v == null || (value == null && v.isNull())) return;
        boolean same = value instanceof Boolean b ? v.isBoolean() && v.booleanValue() == b
                : value instanceof Integer i ? v.canConvertToExactIntegral() && v.asLong() == i
                : value instanceof Double d ? v.isNumber() && v.doubleValue() == d
                : value instanceof String t && v.isTextual() && v.textValue().equals(t);
        if (!same) {
            throw new IllegalArgumentException(WHAT + ": " + key + " " + v + " is not supported by the " + name + " scheduler (only "
                    + (value == null ? "unset" : value instanceof String t ? "\"" + t + "\"" : value) + "); give a config without it, or another scheduler");
        }
    }

    public boolean vPrediction() { return predictionType.equals("v_prediction"); }

    /** leading, trailing or linspace; absent, the scheduler class's default. */
    public String timestepSpacing(ClassDefaults scheduler) { return timestepSpacing.orElse(scheduler.timestepSpacing); }

    public boolean setAlphaToOne(ClassDefaults scheduler) { return setAlphaToOne.orElse(scheduler.setAlphaToOne); }

    public boolean clipSample(ClassDefaults scheduler) { return clipSample.orElse(scheduler.clipSample); }
}
