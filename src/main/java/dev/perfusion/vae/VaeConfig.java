package dev.perfusion.vae;

import dev.perfusion.io.ConfigJson;
import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * Hyper-parameters of diffusers' {@code AutoencoderKL} (v0.27.2), as stored in a {@code vae/config.json}. Absent keys
 * take the defaults of {@code AutoencoderKL.__init__}, except those the weights' shapes depend on (in/out and latent
 * channels, block_out_channels), which must be present. Only DownEncoderBlock2D / UpDecoderBlock2D exist for this model.
 */
public record VaeConfig(
        int inChannels,
        int outChannels,
        List<String> downBlockTypes,
        List<String> upBlockTypes,
        List<Integer> blockOutChannels,
        int layersPerBlock,
        int latentChannels,
        int normNumGroups,
        String actFn,
        int sampleSize,
        double scalingFactor,
        boolean midBlockAddAttention,
        boolean useQuantConv,
        boolean usePostQuantConv) {

    private static final String WHAT = "VAE config";

    public VaeConfig {
        downBlockTypes = List.copyOf(downBlockTypes);
        upBlockTypes = List.copyOf(upBlockTypes);
        blockOutChannels = List.copyOf(blockOutChannels);
        ConfigJson.requireInRange(WHAT, "in_channels", inChannels, 1, Integer.MAX_VALUE);
        ConfigJson.requireInRange(WHAT, "out_channels", outChannels, 1, Integer.MAX_VALUE);
        ConfigJson.requireInRange(WHAT, "layers_per_block", layersPerBlock, 1, ConfigJson.MAX_LAYERS);
        ConfigJson.requireInRange(WHAT, "latent_channels", latentChannels, 1, Integer.MAX_VALUE);
        ConfigJson.requireInRange(WHAT, "norm_num_groups", normNumGroups, 1, Integer.MAX_VALUE);
        ConfigJson.requireInRange(WHAT, "the number of block_out_channels", blockOutChannels.size(), 1, ConfigJson.MAX_LEVELS);
        if (downBlockTypes.size() != blockOutChannels.size() || upBlockTypes.size() != blockOutChannels.size()) {
            throw new IllegalArgumentException(WHAT + ": " + downBlockTypes.size() + " down blocks, " + upBlockTypes.size()
                    + " up blocks and " + blockOutChannels.size() + " block_out_channels must be as many");
        }
        for (String t : downBlockTypes) ConfigJson.requireOneOf(WHAT, "down_block_types", t, List.of("DownEncoderBlock2D"));
        for (String t : upBlockTypes) ConfigJson.requireOneOf(WHAT, "up_block_types", t, List.of("UpDecoderBlock2D"));
        for (int c : blockOutChannels) {
            ConfigJson.requireInRange(WHAT, "block_out_channels", c, 1, Integer.MAX_VALUE);
            if (c % normNumGroups != 0) {
                throw new IllegalArgumentException(WHAT + ": block_out_channels " + c
                        + " is not divisible by norm_num_groups " + normNumGroups);
            }
        }
        ConfigJson.requireOneOf(WHAT, "act_fn", actFn, List.of("silu", "swish"));
        ConfigJson.requireInOpenRange(WHAT, "scaling_factor", scalingFactor, 0, Double.POSITIVE_INFINITY);
    }

    /** {@code AutoencoderKL()} with no arguments: one level of 64 channels. */
    public static VaeConfig defaults() {
        return new VaeConfig(3, 3, List.of("DownEncoderBlock2D"), List.of("UpDecoderBlock2D"), List.of(64), 1, 4, 32,
                "silu", 32, 0.18215, true, true, true);
    }

    /** Image pixels per latent pixel along each side: 2^(levels - 1). */
    public int downsamplingFactor() {
        return 1 << (blockOutChannels.size() - 1);
    }

    /** Reads a config.json file, or the config.json inside a vae folder. */
    public static VaeConfig load(Path path) throws IOException {
        return ConfigJson.load(path, "config.json", WHAT, VaeConfig::parse);
    }

    public static VaeConfig fromJson(JsonNode json) {
        return ConfigJson.parse(json, WHAT, null, VaeConfig::parse);
    }

    private static VaeConfig parse(ConfigJson c) {
        VaeConfig d = defaults();
        return new VaeConfig(
                c.requiredInteger("in_channels"),
                c.requiredInteger("out_channels"),
                c.texts("down_block_types", d.downBlockTypes),
                c.texts("up_block_types", d.upBlockTypes),
                c.requiredIntegers("block_out_channels"),
                c.integer("layers_per_block", d.layersPerBlock),
                c.requiredInteger("latent_channels"),
                c.integer("norm_num_groups", d.normNumGroups),
                c.text("act_fn", d.actFn),
                c.integer("sample_size", d.sampleSize),
                c.number("scaling_factor", d.scalingFactor),
                c.flag("mid_block_add_attention", d.midBlockAddAttention),
                c.flag("use_quant_conv", d.useQuantConv),
                c.flag("use_post_quant_conv", d.usePostQuantConv));
    }
}
