package dev.perfusion.io.layout;

import dev.perfusion.io.StateDict;
import dev.perfusion.vae.VaeConfig;

import java.nio.file.Path;

import static dev.perfusion.io.layout.BlockTable.Kind.LEAF;
import static dev.perfusion.io.layout.BlockTable.Kind.VAE_ATTENTION;
import static dev.perfusion.io.layout.BlockTable.Kind.VAE_RESNET;

/**
 * The original autoencoder layout ({@code first_stage_model.*}, LDM's AutoencoderKL) in diffusers names,
 * generated from the diffusers VAE config. The LDM decoder numbers its levels from the bottom ({@code up.0} is
 * the last to run), diffusers from the top, so {@code decoder.up.(n-1-i)} becomes {@code decoder.up_blocks.i}.
 * The mid-block attention's 1x1 convolutions become linear layers ({@code q,k,v,proj_out} → {@code to_q,to_k,
 * to_v,to_out.0}; {@code norm} → {@code group_norm}).
 */
public final class LdmVae {
    public static final String PREFIX = "first_stage_model.";

    private LdmVae() {}

    /** The VAE tensors of a single-file checkpoint under diffusers names, checked against {@code config}. */
    public static RenamedStateDict view(StateDict file, Path source, VaeConfig config, String configOrigin) {
        return blocks(config).apply(file, source, PREFIX, "VAE", describe(config) + ", from " + configOrigin);
    }

    /** The block table for a diffusers AutoencoderKL config. */
    public static BlockTable blocks(VaeConfig config) {
        int levels = config.blockOutChannels().size();
        int layers = config.layersPerBlock();
        boolean midAttention = config.midBlockAddAttention();

        BlockTable t = new BlockTable();
        t.add("encoder.conv_in", "encoder.conv_in", LEAF);
        for (int level = 0; level < levels; level++) {
            for (int j = 0; j < layers; j++) {
                t.add("encoder.down." + level + ".block." + j, "encoder.down_blocks." + level + ".resnets." + j, VAE_RESNET);
            }
            if (level < levels - 1) {
                t.add("encoder.down." + level + ".downsample.conv", "encoder.down_blocks." + level + ".downsamplers.0.conv", LEAF);
            }
        }
        addMidBlock(t, "encoder", midAttention);
        t.add("encoder.norm_out", "encoder.conv_norm_out", LEAF);
        t.add("encoder.conv_out", "encoder.conv_out", LEAF);

        if (config.useQuantConv()) t.add("quant_conv", "quant_conv", LEAF);
        if (config.usePostQuantConv()) t.add("post_quant_conv", "post_quant_conv", LEAF);

        t.add("decoder.conv_in", "decoder.conv_in", LEAF);
        addMidBlock(t, "decoder", midAttention);
        for (int level = 0; level < levels; level++) {
            int ldmLevel = levels - 1 - level;
            for (int j = 0; j < layers + 1; j++) {
                t.add("decoder.up." + ldmLevel + ".block." + j, "decoder.up_blocks." + level + ".resnets." + j, VAE_RESNET);
            }
            if (level < levels - 1) {
                t.add("decoder.up." + ldmLevel + ".upsample.conv", "decoder.up_blocks." + level + ".upsamplers.0.conv", LEAF);
            }
        }
        t.add("decoder.norm_out", "decoder.conv_norm_out", LEAF);
        t.add("decoder.conv_out", "decoder.conv_out", LEAF);
        return t;
    }

    private static void addMidBlock(BlockTable t, String coder, boolean attention) {
        t.add(coder + ".mid.block_1", coder + ".mid_block.resnets.0", VAE_RESNET);
        if (attention) t.add(coder + ".mid.attn_1", coder + ".mid_block.attentions.0", VAE_ATTENTION);
        t.add(coder + ".mid.block_2", coder + ".mid_block.resnets.1", VAE_RESNET);
    }

    static String describe(VaeConfig config) {
        return "block_out_channels " + config.blockOutChannels() + ", layers_per_block " + config.layersPerBlock();
    }
}
