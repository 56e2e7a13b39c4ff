package dev.perfusion.unet;

import com.fasterxml.jackson.databind.JsonNode;
import dev.perfusion.io.ConfigJson;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

/**
 * diffusers' UNet2DConditionModel configuration, with diffusers' defaults for absent keys except those the weights'
 * shapes depend on (in/out channels, block_out_channels, cross_attention_dim), which must be present.
 */
public record UNetConfig(int inChannels, int outChannels, List<Integer> blockOutChannels, int layersPerBlock,
                         List<String> downBlockTypes, String midBlockType, List<String> upBlockTypes,
                         int crossAttentionDim, List<Integer> headsPerBlock, boolean useLinearProjection,
                         boolean upcastAttention, List<Integer> transformerLayersPerBlock, int normNumGroups,
                         double normEps, boolean flipSinToCos, int freqShift, int downsamplePadding,
                         double midBlockScaleFactor, boolean centerInputSample, int sampleSize) {

    private static final Set<String> DOWN = Set.of("CrossAttnDownBlock2D", "DownBlock2D");
    private static final Set<String> UP = Set.of("CrossAttnUpBlock2D", "UpBlock2D");

    public static UNetConfig load(Path file) throws IOException {
        Path f = Files.isDirectory(file) ? file.resolve("config.json") : file;
        try {
            return fromJson(ConfigJson.read(f), f);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(f + ": " + e.getMessage(), e);
        }
    }

    public static UNetConfig fromJson(JsonNode json) {
        return fromJson(json, "a UNet config");
    }

    private static UNetConfig fromJson(JsonNode json, Object source) {
        return new ConfigJson(json, "UNet config").build(source, c -> parse(json, c));
    }

    private static UNetConfig parse(JsonNode json, ConfigJson c) {
        List<Integer> channels = c.requiredIntegers("block_out_channels");
        int levels = c.inRange("the number of block_out_channels", channels.size(), 1, ConfigJson.MAX_LEVELS);
        for (int ch : channels) c.inRange("block_out_channels", ch, 1, Integer.MAX_VALUE);
        List<String> down = c.texts("down_block_types",
                List.of("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"));
        List<String> up = c.texts("up_block_types",
                List.of("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"));
        if (down.size() != levels || up.size() != levels) {
            throw new IllegalArgumentException("down_block_types " + down + " and up_block_types " + up
                    + " must have one entry per block_out_channels " + channels);
        }
        for (String d : down) if (!DOWN.contains(d)) throw new IllegalArgumentException("unsupported down block type " + d);
        for (String u : up) if (!UP.contains(u)) throw new IllegalArgumentException("unsupported up block type " + u);
        // an explicit null means no mid block; absent means diffusers' default
        String mid = json.has("mid_block_type") ? c.text("mid_block_type", null) : "UNetMidBlock2DCrossAttn";
        if (mid != null && !mid.equals("UNetMidBlock2DCrossAttn")) throw new IllegalArgumentException("unsupported mid_block_type " + mid);
        for (String key : List.of("class_embed_type", "addition_embed_type", "encoder_hid_dim", "time_cond_proj_dim")) {
            if (c.has(key)) throw new IllegalArgumentException("unsupported " + key + " = " + json.get(key));
        }
        for (String key : List.of("dual_cross_attention", "only_cross_attention")) {
            if (c.flag(key, false)) throw new IllegalArgumentException("unsupported " + key + " = true");
        }
        requireValue(c, "time_embedding_type", "positional");
        requireValue(c, "resnet_time_scale_shift", "default");
        requireValue(c, "act_fn", "silu");
        // diffusers' historical naming: attention_head_dim is the number of heads unless num_attention_heads is set
        String headsKey = c.has("num_attention_heads") ? "num_attention_heads" : "attention_head_dim";
        int groups = c.inRange("norm_num_groups", c.integer("norm_num_groups", 32), 1, Integer.MAX_VALUE);
        for (int ch : channels) {
            if (ch % groups != 0) throw new IllegalArgumentException("block_out_channels " + ch + " not divisible by norm_num_groups " + groups);
        }
        List<Integer> heads = c.perLevel(headsKey, 8, levels);
        for (int h : heads) c.inRange(headsKey, h, 1, Integer.MAX_VALUE);
        List<Integer> transformerLayers = c.perLevel("transformer_layers_per_block", 1, levels);
        for (int t : transformerLayers) c.inRange("transformer_layers_per_block", t, 1, ConfigJson.MAX_LAYERS);
        return new UNetConfig(c.inRange("in_channels", c.requiredInteger("in_channels"), 1, Integer.MAX_VALUE),
                c.inRange("out_channels", c.requiredInteger("out_channels"), 1, Integer.MAX_VALUE), channels,
                c.inRange("layers_per_block", c.integer("layers_per_block", 2), 1, ConfigJson.MAX_LAYERS), down, mid, up,
                c.inRange("cross_attention_dim", c.requiredInteger("cross_attention_dim"), 1, Integer.MAX_VALUE),
                heads, c.flag("use_linear_projection", false), c.flag("upcast_attention", false),
                transformerLayers, groups, c.number("norm_eps", 1e-5),
                c.flag("flip_sin_to_cos", true), c.integer("freq_shift", 0), c.integer("downsample_padding", 1),
                c.number("mid_block_scale_factor", 1.0), c.flag("center_input_sample", false), c.integer("sample_size", 64));
    }

    private static void requireValue(ConfigJson c, String key, String supported) {
        String v = c.text(key, supported);
        if (!v.equals(supported)) throw new IllegalArgumentException("unsupported " + key + " '" + v + "' (only '" + supported + "')");
    }

    public int levels() { return blockOutChannels.size(); }

    public int timeEmbedDim() { return blockOutChannels.get(0) * 4; }
}
