package dev.perfusion.vae;

import dev.perfusion.io.ConfigJson;
import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
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

    public VaeConfig {
        downBlockTypes = List.copyOf(downBlockTypes);
        upBlockTypes = List.copyOf(upBlockTypes);
        blockOutChannels = List.copyOf(blockOutChannels);
        requirePositive("in_channels", inChannels);
        requirePositive("out_channels", outChannels);
        requirePositive("layers_per_block", layersPerBlock);
        if (layersPerBlock > ConfigJson.MAX_LAYERS) {
            throw new IllegalArgumentException("VAE config: layers_per_block must be at most " + ConfigJson.MAX_LAYERS + ", got " + layersPerBlock);
        }
        requirePositive("latent_channels", latentChannels);
        requirePositive("norm_num_groups", normNumGroups);
        if (blockOutChannels.isEmpty() || blockOutChannels.size() > ConfigJson.MAX_LEVELS) {
            throw new IllegalArgumentException("VAE config: block_out_channels must have 1 to " + ConfigJson.MAX_LEVELS
                    + " levels, has " + blockOutChannels.size());
        }
        if (downBlockTypes.size() != blockOutChannels.size() || upBlockTypes.size() != blockOutChannels.size()) {
            throw new IllegalArgumentException("VAE config: " + downBlockTypes.size() + " down blocks, " + upBlockTypes.size()
                    + " up blocks and " + blockOutChannels.size() + " block_out_channels must be as many");
        }
        for (String t : downBlockTypes) {
            if (!t.equals("DownEncoderBlock2D")) throw new IllegalArgumentException("VAE config: unsupported down block type " + t);
        }
        for (String t : upBlockTypes) {
            if (!t.equals("UpDecoderBlock2D")) throw new IllegalArgumentException("VAE config: unsupported up block type " + t);
        }
        for (int c : blockOutChannels) {
            requirePositive("block_out_channels", c);
            if (c % normNumGroups != 0) {
                throw new IllegalArgumentException("VAE config: block_out_channels " + c
                        + " is not divisible by norm_num_groups " + normNumGroups);
            }
        }
        if (!actFn.equals("silu") && !actFn.equals("swish")) {
            throw new IllegalArgumentException("VAE config: unsupported act_fn " + actFn + " (only silu)");
        }
        if (!(scalingFactor > 0)) throw new IllegalArgumentException("VAE config: scaling_factor must be > 0, got " + scalingFactor);
    }

    private static void requirePositive(String key, int value) {
        if (value <= 0) throw new IllegalArgumentException("VAE config: " + key + " must be > 0, got " + value);
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
        Path file = Files.isDirectory(path) ? path.resolve("config.json") : path;
        if (!Files.isRegularFile(file)) throw new IOException("no VAE config at " + file);
        try {
            return fromJson(ConfigJson.read(file), file);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    public static VaeConfig fromJson(JsonNode json) {
        return fromJson(json, "a VAE config");
    }

    private static VaeConfig fromJson(JsonNode json, Object source) {
        return new ConfigJson(json, "VAE config").build(source, VaeConfig::parse);
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
