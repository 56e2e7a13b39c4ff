package dev.perfusion.io.layout;

import dev.perfusion.io.StateDict;
import dev.perfusion.unet.UNetConfig;

import java.nio.file.Path;

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
    public static RenamedStateDict view(StateDict file, Path source, UNetConfig config, String configOrigin) {
        return blocks(config).apply(file, source, PREFIX, "UNet", describe(config) + ", from " + configOrigin);
    }

    /** How many input_blocks the LDM UNet of {@code config} has: conv_in, each level's resnets, a downsampler between levels. */
    static int inputBlocks(UNetConfig config) {
        return 1 + config.levels() * config.layersPerBlock() + config.levels() - 1;
    }

    /** The block table for a diffusers UNet2DConditionModel config. */
    public static BlockTable blocks(UNetConfig config) {
        int levels = config.levels();
        int layers = config.layersPerBlock();
        BlockTable t = new BlockTable();
        t.add("time_embed.0", "time_embedding.linear_1", LEAF);
        t.add("time_embed.2", "time_embedding.linear_2", LEAF);
        t.add("input_blocks.0.0", "conv_in", LEAF);

        int input = 1;
        for (int level = 0; level < levels; level++) {
            boolean attention = hasCrossAttention(config.downBlockTypes().get(level));
            for (int j = 0; j < layers; j++, input++) {
                t.add("input_blocks." + input + ".0", "down_blocks." + level + ".resnets." + j, UNET_RESNET);
                if (attention) t.add("input_blocks." + input + ".1", "down_blocks." + level + ".attentions." + j, SAME_INSIDE);
            }
            if (level < levels - 1) {
                t.add("input_blocks." + input + ".0.op", "down_blocks." + level + ".downsamplers.0.conv", LEAF);
                input++;
            }
        }

        if (config.midBlockType() != null) {
            t.add("middle_block.0", "mid_block.resnets.0", UNET_RESNET);
            t.add("middle_block.1", "mid_block.attentions.0", SAME_INSIDE);
            t.add("middle_block.2", "mid_block.resnets.1", UNET_RESNET);
        }

        int output = 0;
        for (int level = 0; level < levels; level++) {
            boolean attention = hasCrossAttention(config.upBlockTypes().get(level));
            int resnets = layers + 1;
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

    /** CrossAttnDownBlock2D / CrossAttnUpBlock2D; the config admits no other blocks with attention. */
    private static boolean hasCrossAttention(String blockType) {
        return blockType.startsWith("CrossAttn");
    }

    static String describe(UNetConfig config) {
        return "block_out_channels " + config.blockOutChannels() + ", layers_per_block " + config.layersPerBlock()
                + ", down_block_types " + config.downBlockTypes();
    }
}
