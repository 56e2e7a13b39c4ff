package dev.perfusion.io.layout;

import com.fasterxml.jackson.databind.JsonNode;
import dev.perfusion.io.StateDict;

import java.nio.file.Path;
import java.util.List;

import static dev.perfusion.io.layout.BlockTable.Kind.LEAF;
import static dev.perfusion.io.layout.BlockTable.Kind.SAME_INSIDE;
import static dev.perfusion.io.layout.BlockTable.Kind.UNET_RESNET;

/**
 * The original UNet layout ({@code model.diffusion_model.*}, LDM's openaimodel UNetModel) in diffusers names
 * (UNet2DConditionModel), generated from the diffusers UNet config the way diffusers' conversion numbers blocks:
 * input_blocks are counted through the levels (conv_in first, then per level its resnets, each followed by its
 * transformer at index 1 when the level has cross-attention, then the level's downsampler {@code .0.op});
 * output_blocks likewise through the up levels, with the upsampler after the transformer (index 2) or after the
 * resnet (index 1).
 */
public final class LdmUnet {
    public static final String PREFIX = "model.diffusion_model.";

    private LdmUnet() {}

    /** The UNet tensors of a single-file checkpoint under diffusers names, checked against {@code config}. */
    public static RenamedStateDict view(StateDict file, Path source, JsonNode config, String configOrigin) {
        return blocks(config).apply(file, source, PREFIX, "UNet", describe(config) + ", from " + configOrigin);
    }

    /** The block table for a diffusers UNet2DConditionModel config. */
    public static BlockTable blocks(JsonNode config) {
        List<Integer> channels = ConfigValues.requiredIntegers(config, "block_out_channels", "UNet");
        int levels = channels.size();
        List<String> down = ConfigValues.texts(config, "down_block_types",
                "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D");
        List<String> up = ConfigValues.texts(config, "up_block_types",
                "UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D");
        if (down.size() != levels || up.size() != levels) {
            throw new IllegalArgumentException("UNet config: " + levels + " block_out_channels but " + down.size()
                    + " down_block_types and " + up.size() + " up_block_types");
        }
        int[] layers = ConfigValues.perLevel(config, "layers_per_block", 2, levels, "UNet");
        for (int n : layers) {
            // a count beyond any model: refused before it becomes a table of millions of names
            if (n < 1 || n > dev.perfusion.io.ConfigJson.MAX_LAYERS) {
                throw new IllegalArgumentException("UNet config: layers_per_block must be between 1 and "
                        + dev.perfusion.io.ConfigJson.MAX_LAYERS + ", got " + n);
            }
        }
        for (String unsupported : List.of("class_embed_type", "addition_embed_type", "encoder_hid_dim_type")) {
            if (ConfigValues.present(config, unsupported)) {
                throw new IllegalArgumentException("UNet config: " + unsupported + " = " + config.get(unsupported)
                        + " is not supported for single-file checkpoints");
            }
        }

        BlockTable t = new BlockTable();
        t.add("time_embed.0", "time_embedding.linear_1", LEAF);
        t.add("time_embed.2", "time_embedding.linear_2", LEAF);
        t.add("input_blocks.0.0", "conv_in", LEAF);

        int input = 1;
        for (int level = 0; level < levels; level++) {
            boolean attention = hasCrossAttention(down.get(level), "Down");
            for (int j = 0; j < layers[level]; j++, input++) {
                t.add("input_blocks." + input + ".0", "down_blocks." + level + ".resnets." + j, UNET_RESNET);
                if (attention) t.add("input_blocks." + input + ".1", "down_blocks." + level + ".attentions." + j, SAME_INSIDE);
            }
            if (level < levels - 1) {
                t.add("input_blocks." + input + ".0.op", "down_blocks." + level + ".downsamplers.0.conv", LEAF);
                input++;
            }
        }

        String mid = ConfigValues.text(config, "mid_block_type", "UNetMidBlock2DCrossAttn");
        if (!mid.equals("UNetMidBlock2DCrossAttn")) {
            throw new IllegalArgumentException("UNet config: mid_block_type " + mid + " is not supported for single-file checkpoints");
        }
        t.add("middle_block.0", "mid_block.resnets.0", UNET_RESNET);
        t.add("middle_block.1", "mid_block.attentions.0", SAME_INSIDE);
        t.add("middle_block.2", "mid_block.resnets.1", UNET_RESNET);

        int output = 0;
        for (int level = 0; level < levels; level++) {
            boolean attention = hasCrossAttention(up.get(level), "Up");
            int resnets = layers[levels - 1 - level] + 1;
            for (int j = 0; j < resnets; j++, output++) {
                t.add("output_blocks." + output + ".0", "up_blocks." + level + ".resnets." + j, UNET_RESNET);
                if (attention) t.add("output_blocks." + output + ".1", "up_blocks." + level + ".attentions." + j, SAME_INSIDE);
                if (j == resnets - 1 && level < levels - 1) {
                    t.add("output_blocks." + output + "." + (attention ? 2 : 1) + ".conv",
                            "up_blocks." + level + ".upsamplers.0.conv", LEAF);
                }
            }
        }

        t.add("out.0", "conv_norm_out", LEAF);
        t.add("out.2", "conv_out", LEAF);
        return t;
    }

    private static boolean hasCrossAttention(String blockType, String direction) {
        if (blockType.equals("CrossAttn" + direction + "Block2D")) return true;
        if (blockType.equals(direction + "Block2D")) return false;
        throw new IllegalArgumentException("UNet config: block type " + blockType + " is not supported for single-file checkpoints"
                + " (supported: CrossAttn" + direction + "Block2D, " + direction + "Block2D)");
    }

    static String describe(JsonNode config) {
        return "block_out_channels " + ConfigValues.integers(config, "block_out_channels", 320, 640, 1280, 1280)
                + ", layers_per_block " + (ConfigValues.present(config, "layers_per_block") ? config.get("layers_per_block") : 2)
                + ", down_block_types " + ConfigValues.texts(config, "down_block_types", "(default)");
    }
}
