package dev.perfusion.unet;

import com.fasterxml.jackson.databind.JsonNode;
import dev.perfusion.io.ConfigJson;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

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

    private static final String WHAT = "UNet config";
    private static final List<String> DOWN = List.of("CrossAttnDownBlock2D", "DownBlock2D");
    private static final List<String> UP = List.of("CrossAttnUpBlock2D", "UpBlock2D");
    private static final String CROSS_ATTENTION_MID = "UNetMidBlock2DCrossAttn";

    /**
     * {@code UNet2DConditionModel()} with no arguments (diffusers v0.27.2), the defaults of absent keys: SD 1.x's
     * structure with cross_attention_dim 1280. sample_size is None there; 64 here, SD 1.x's latent size.
     */
    public static UNetConfig defaults() {
        return new UNetConfig(4, 4, List.of(320, 640, 1280, 1280), 2,
                List.of("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                CROSS_ATTENTION_MID, List.of("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
                1280, List.of(8, 8, 8, 8), false, false, List.of(1, 1, 1, 1), 32, 1e-5, true, 0, 1, 1.0, false, 64);
    }

    /** Reads a config.json file, or the config.json inside a unet folder. */
    public static UNetConfig load(Path path) throws IOException {
        return ConfigJson.load(path, "config.json", WHAT, UNetConfig::parse);
    }

    public static UNetConfig fromJson(JsonNode json) {
        return ConfigJson.parse(json, WHAT, null, UNetConfig::parse);
    }

    private static UNetConfig parse(ConfigJson c) {
        UNetConfig d = defaults();
        List<Integer> channels = c.requiredIntegers("block_out_channels");
        int levels = c.inRange("the number of block_out_channels", channels.size(), 1, ConfigJson.MAX_LEVELS);
        for (int ch : channels) c.inRange("block_out_channels", ch, 1, Integer.MAX_VALUE);
        List<String> down = c.texts("down_block_types", d.downBlockTypes);
        List<String> up = c.texts("up_block_types", d.upBlockTypes);
        String perLevel = "a list of " + levels + " (one per block_out_channels " + channels + ")";
        if (down.size() != levels) throw c.refuse("down_block_types", perLevel, down);
        if (up.size() != levels) throw c.refuse("up_block_types", perLevel, up);
        for (String type : down) c.requireOneOf("down_block_types", type, DOWN);
        for (String type : up) c.requireOneOf("up_block_types", type, UP);
        // an explicit null means no mid block; absent means diffusers' default
        String mid = c.isExplicitNull("mid_block_type") ? null : c.oneOf("mid_block_type", d.midBlockType, List.of(CROSS_ATTENTION_MID));
        // each changes what diffusers computes (class labels, a norm on the text before the keys, an activation after the
        // time embedding...): a config that sets one is refused rather than drawn without it
        for (String key : List.of("class_embed_type", "addition_embed_type", "encoder_hid_dim", "encoder_hid_dim_type",
                "time_cond_proj_dim", "num_class_embeds", "cross_attention_norm", "time_embedding_act_fn", "timestep_post_act",
                "time_embedding_dim", "projection_class_embeddings_input_dim", "addition_time_embed_dim")) {
            c.requireUnset(key);
        }
        for (String key : List.of("dual_cross_attention", "only_cross_attention")) {
            if (c.flag(key, false)) throw c.refuse(key, "false (the feature is not supported)", true);
        }
        // read only where present: an error's list of the defaults taken stays the keys the shapes depend on
        for (String key : List.of("mid_block_only_cross_attention", "class_embeddings_concat")) {
            if (c.has(key) && c.flag(key, false)) throw c.refuse(key, "false (the feature is not supported)", true);
        }
        for (String key : List.of("conv_in_kernel", "conv_out_kernel")) {
            if (c.has(key) && c.integer(key, 3) != 3) throw c.refuse(key, "3 (the only kernel supported)", c.integer(key, 3));
        }
        if (c.has("attention_type")) c.oneOf("attention_type", "default", List.of("default"));
        c.oneOf("time_embedding_type", "positional", List.of("positional"));
        c.oneOf("resnet_time_scale_shift", "default", List.of("default"));
        c.oneOf("act_fn", "silu", List.of("silu"));
        // diffusers' historical naming: attention_head_dim is the number of heads unless num_attention_heads is set
        String headsKey = c.has("num_attention_heads") ? "num_attention_heads" : "attention_head_dim";
        int groups = c.inRange("norm_num_groups", c.integer("norm_num_groups", d.normNumGroups), 1, Integer.MAX_VALUE);
        for (int ch : channels) {
            if (ch % groups != 0) {
                throw new IllegalArgumentException(WHAT + ": block_out_channels " + ch + " is not divisible by norm_num_groups " + groups);
            }
        }
        // the per-level defaults are one number for every level
        List<Integer> heads = c.perLevel(headsKey, d.headsPerBlock.get(0), levels);
        for (int h : heads) c.inRange(headsKey, h, 1, Integer.MAX_VALUE);
        List<Integer> transformerLayers = c.perLevel("transformer_layers_per_block", d.transformerLayersPerBlock.get(0), levels);
        for (int t : transformerLayers) c.inRange("transformer_layers_per_block", t, 1, ConfigJson.MAX_LAYERS);
        // diffusers also takes one count per level; the blocks here have the same count on every level
        int layers = c.inRange("layers_per_block", c.sameOnEveryLevel("layers_per_block", d.layersPerBlock, levels), 1, ConfigJson.MAX_LAYERS);
        return new UNetConfig(c.inRange("in_channels", c.requiredInteger("in_channels"), 1, Integer.MAX_VALUE),
                c.inRange("out_channels", c.requiredInteger("out_channels"), 1, Integer.MAX_VALUE), channels, layers, down, mid, up,
                c.inRange("cross_attention_dim", c.requiredInteger("cross_attention_dim"), 1, Integer.MAX_VALUE),
                heads, c.flag("use_linear_projection", d.useLinearProjection), c.flag("upcast_attention", d.upcastAttention),
                transformerLayers, groups, c.number("norm_eps", d.normEps),
                c.flag("flip_sin_to_cos", d.flipSinToCos), c.integer("freq_shift", d.freqShift),
                c.integer("downsample_padding", d.downsamplePadding), c.number("mid_block_scale_factor", d.midBlockScaleFactor),
                c.flag("center_input_sample", d.centerInputSample), c.integer("sample_size", d.sampleSize));
    }

    public int levels() { return blockOutChannels.size(); }

    public int timeEmbedDim() { return blockOutChannels.get(0) * 4; }
}
