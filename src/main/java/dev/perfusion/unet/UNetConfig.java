package dev.perfusion.unet;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/** diffusers' UNet2DConditionModel configuration, with diffusers' defaults for absent keys. */
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
            return fromJson(new ObjectMapper().readTree(f.toFile()));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(f + ": " + e.getMessage(), e);
        }
    }

    public static UNetConfig fromJson(JsonNode j) {
        List<Integer> channels = ints(j, "block_out_channels", List.of(320, 640, 1280, 1280));
        int levels = channels.size();
        List<String> down = strings(j, "down_block_types",
                List.of("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"));
        List<String> up = strings(j, "up_block_types",
                List.of("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"));
        if (down.size() != levels || up.size() != levels) {
            throw new IllegalArgumentException("down_block_types " + down + " and up_block_types " + up
                    + " must have one entry per block_out_channels " + channels);
        }
        for (String d : down) if (!DOWN.contains(d)) throw new IllegalArgumentException("unsupported down block type " + d);
        for (String u : up) if (!UP.contains(u)) throw new IllegalArgumentException("unsupported up block type " + u);
        String mid = j.has("mid_block_type") ? (j.get("mid_block_type").isNull() ? null : j.get("mid_block_type").asText())
                : "UNetMidBlock2DCrossAttn";
        if (mid != null && !mid.equals("UNetMidBlock2DCrossAttn")) throw new IllegalArgumentException("unsupported mid_block_type " + mid);
        for (String key : List.of("class_embed_type", "addition_embed_type", "encoder_hid_dim", "time_cond_proj_dim")) {
            if (j.hasNonNull(key)) throw new IllegalArgumentException("unsupported " + key + " = " + j.get(key));
        }
        for (String key : List.of("dual_cross_attention", "only_cross_attention")) {
            if (j.path(key).asBoolean(false)) throw new IllegalArgumentException("unsupported " + key + " = true");
        }
        if (j.hasNonNull("time_embedding_type") && !j.get("time_embedding_type").asText().equals("positional")) {
            throw new IllegalArgumentException("unsupported time_embedding_type " + j.get("time_embedding_type"));
        }
        if (j.hasNonNull("resnet_time_scale_shift") && !j.get("resnet_time_scale_shift").asText().equals("default")) {
            throw new IllegalArgumentException("unsupported resnet_time_scale_shift " + j.get("resnet_time_scale_shift"));
        }
        if (j.hasNonNull("act_fn") && !j.get("act_fn").asText().equals("silu")) {
            throw new IllegalArgumentException("unsupported act_fn " + j.get("act_fn"));
        }
        // diffusers' historical naming: attention_head_dim is the number of heads unless num_attention_heads is set
        JsonNode heads = j.hasNonNull("num_attention_heads") ? j.get("num_attention_heads") : j.get("attention_head_dim");
        List<Integer> headsPerBlock = perLevel(heads, 8, levels, "attention_head_dim");
        List<Integer> transformerLayers = perLevel(j.get("transformer_layers_per_block"), 1, levels, "transformer_layers_per_block");
        int groups = j.path("norm_num_groups").asInt(32);
        for (int c : channels) {
            if (c % groups != 0) throw new IllegalArgumentException("block_out_channels " + c + " not divisible by norm_num_groups " + groups);
        }
        return new UNetConfig(j.path("in_channels").asInt(4), j.path("out_channels").asInt(4), channels,
                j.path("layers_per_block").asInt(2), down, mid, up, j.path("cross_attention_dim").asInt(1280),
                headsPerBlock, j.path("use_linear_projection").asBoolean(false), j.path("upcast_attention").asBoolean(false),
                transformerLayers, groups, j.path("norm_eps").asDouble(1e-5), j.path("flip_sin_to_cos").asBoolean(true),
                j.path("freq_shift").asInt(0), j.path("downsample_padding").asInt(1),
                j.path("mid_block_scale_factor").asDouble(1.0), j.path("center_input_sample").asBoolean(false),
                j.path("sample_size").asInt(64));
    }

    private static List<Integer> perLevel(JsonNode n, int dflt, int levels, String key) {
        List<Integer> out = new ArrayList<>();
        if (n == null || n.isNull()) {
            for (int i = 0; i < levels; i++) out.add(dflt);
        } else if (n.isArray()) {
            if (n.size() != levels) throw new IllegalArgumentException(key + " " + n + " must have " + levels + " entries");
            n.forEach(x -> out.add(x.asInt()));
        } else {
            for (int i = 0; i < levels; i++) out.add(n.asInt());
        }
        return List.copyOf(out);
    }

    private static List<Integer> ints(JsonNode j, String key, List<Integer> dflt) {
        if (!j.hasNonNull(key)) return dflt;
        List<Integer> out = new ArrayList<>();
        j.get(key).forEach(x -> out.add(x.asInt()));
        return List.copyOf(out);
    }

    private static List<String> strings(JsonNode j, String key, List<String> dflt) {
        if (!j.hasNonNull(key)) return dflt;
        List<String> out = new ArrayList<>();
        j.get(key).forEach(x -> out.add(x.asText()));
        return List.copyOf(out);
    }

    public int levels() { return blockOutChannels.size(); }

    public int timeEmbedDim() { return blockOutChannels.get(0) * 4; }
}
