package dev.perfusion.io.layout;

import dev.perfusion.io.StateDict;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Recognises the standard Stable Diffusion families from tensor shapes, so that a single-file checkpoint can be
 * paired with the built-in diffusers configs:
 * <ul>
 * <li>{@code sd15}: SD 1.x: UNet cross-attention context 768 (attn2.to_k is [320, 768]), 1x1-conv proj_in,
 * in_channels 4, model channels 320, 12 input blocks; CLIP text encoder 12 layers x 768; 4 latent channels.</li>
 * <li>{@code sd21-base} / {@code sd21-v}: SD 2.x: context 1024, linear proj_in, OpenCLIP text tower 24 (or 23)
 * layers x 1024 (or a 23-layer transformers CLIP text model), otherwise as SD 1.x.</li>
 * </ul>
 * Whether an SD 2.x model predicts epsilon (the 512 "base" models) or v (the 768 models) cannot be read from its
 * weights: the architectures are identical. Recognition therefore returns {@code sd21-base} (epsilon) unless the
 * file name says 768-v ({@code 768-v}, as in {@code 768-v-ema.safetensors}, or {@code v2-1_768} / {@code v2-0_768},
 * as in {@code v2-1_768-ema-pruned.safetensors}); the user can name the family instead (sd21-v) or give a config folder.
 * The built-in SD 2.x configs are 2.1's; 2.0 files load with them too (they differ in upcast_attention only, which
 * matters for fp16 numerics).
 */
public final class ModelFamily {
    public static final String SD15 = "sd15";
    public static final String SD21_BASE = "sd21-base";
    public static final String SD21_V = "sd21-v";
    /** Configs that match none of the built-in families. */
    public static final String CUSTOM = "custom";
    public static final List<String> BUILT_IN = List.of(SD15, SD21_BASE, SD21_V);

    private static final String UNET = LdmUnet.PREFIX;
    private static final Pattern INPUT_BLOCK = Pattern.compile("^model\\.diffusion_model\\.input_blocks\\.(\\d+)\\.");
    private static final Pattern CLIP_LAYER = Pattern.compile("^cond_stage_model\\.transformer\\.(?:text_model\\.)?encoder\\.layers\\.(\\d+)\\.");
    private static final Pattern OPEN_CLIP_LAYER = Pattern.compile("^cond_stage_model\\.model\\.transformer\\.resblocks\\.(\\d+)\\.");
    private static final Pattern V_PREDICTION_NAME = Pattern.compile("768-v|v2-[01]_768");

    private ModelFamily() {}

    /**
     * The shapes recognition reads from a single file (-1 where the tensor is absent). Only small tensors are
     * read for their shapes; no tensor data is read at all.
     */
    public record Signature(long contextDim, long inChannels, long modelChannels, int inputBlocks, boolean linearProjIn,
                            LdmTextEncoder.Layout textEncoder, long textWidth, int textLayers, long latentChannels) {
        public String describe() {
            return "UNet context dim " + contextDim + ", in_channels " + inChannels + ", model channels " + modelChannels
                    + ", " + inputBlocks + " input blocks, proj_in " + (linearProjIn ? "linear" : "conv")
                    + "; text encoder " + (textEncoder == null ? "none" : textEncoder + " " + textLayers + " layers x " + textWidth)
                    + "; VAE latent channels " + latentChannels;
        }

        boolean isSd1() {
            return contextDim == 768 && inChannels == 4 && modelChannels == 320 && inputBlocks == 12 && !linearProjIn
                    && textEncoder == LdmTextEncoder.Layout.CLIP && textWidth == 768 && textLayers == 12 && latentChannels == 4;
        }

        boolean isSd2() {
            boolean openClip = textEncoder == LdmTextEncoder.Layout.OPEN_CLIP && (textLayers == 24 || textLayers == 23);
            // files converted back from diffusers may hold the 23-layer transformers CLIPTextModel instead
            boolean convertedClip = textEncoder == LdmTextEncoder.Layout.CLIP && textLayers == 23;
            return contextDim == 1024 && inChannels == 4 && modelChannels == 320 && inputBlocks == 12 && linearProjIn
                    && (openClip || convertedClip) && textWidth == 1024 && latentChannels == 4;
        }
    }

    public static Signature signature(StateDict file) {
        long[] toK = shapeOf(file, UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight");
        long[] convIn = shapeOf(file, UNET + "input_blocks.0.0.weight");
        long[] projIn = shapeOf(file, UNET + "input_blocks.1.1.proj_in.weight");
        long[] decoderIn = shapeOf(file, LdmVae.PREFIX + "decoder.conv_in.weight");
        int inputBlocks = count(file, INPUT_BLOCK);
        LdmTextEncoder.Layout text = LdmTextEncoder.detect(file).orElse(null);
        long textWidth = -1;
        int textLayers = 0;
        if (text == LdmTextEncoder.Layout.CLIP) {
            long[] norm = shapeOf(file, LdmTextEncoder.CLIP_PREFIX + "text_model.final_layer_norm.weight");
            if (norm == null) norm = shapeOf(file, LdmTextEncoder.CLIP_PREFIX + "final_layer_norm.weight");
            textWidth = norm == null ? -1 : norm[0];
            textLayers = count(file, CLIP_LAYER);
        } else if (text == LdmTextEncoder.Layout.OPEN_CLIP) {
            long[] norm = shapeOf(file, LdmTextEncoder.OPEN_CLIP_PREFIX + "ln_final.weight");
            textWidth = norm == null ? -1 : norm[0];
            textLayers = count(file, OPEN_CLIP_LAYER);
        }
        return new Signature(dim(toK, 1), dim(convIn, 1), dim(convIn, 0), inputBlocks, projIn != null && projIn.length == 2,
                text, textWidth, textLayers, dim(decoderIn, 1));
    }

    /**
     * The built-in family of a single-file checkpoint, from its shapes (and, for SD 2.x, its file name); fails
     * with a message naming the file and what was seen when it is none of them.
     */
    public static String recognize(StateDict file, Path source) {
        Signature s = signature(file);
        if (s.isSd1()) return SD15;
        if (s.isSd2()) return namesVPrediction(source) ? SD21_V : SD21_BASE;
        throw new ModelInputException(source + ": unknown model family (" + s.describe() + "; built-in families: "
                + String.join(", ", BUILT_IN) + "): give a diffusers folder whose config files describe this model",
                ModelInputException.Input.CONFIG_FOLDER);
    }

    /** Whether the file name marks an SD 2.x 768-v (v-prediction) model. */
    public static boolean namesVPrediction(Path source) {
        Path name = source.getFileName();
        return name != null && V_PREDICTION_NAME.matcher(name.toString().toLowerCase(Locale.ROOT)).find();
    }

    /** The family whose built-in configs these configs match in architecture and prediction type, or {@link #CUSTOM}. */
    public static String classify(ModelConfigs configs) {
        boolean sdUnet = ConfigValues.integers(configs.unet(), "block_out_channels", 320, 640, 1280, 1280)
                .equals(List.of(320, 640, 1280, 1280))
                && ConfigValues.integer(configs.unet(), "in_channels", 4) == 4;
        int context = ConfigValues.integer(configs.unet(), "cross_attention_dim", 1280);
        int textWidth = ConfigValues.integer(configs.textEncoder(), "hidden_size", 512);
        if (sdUnet && context == 768 && textWidth == 768) return SD15;
        if (sdUnet && context == 1024 && textWidth == 1024) {
            return ConfigValues.text(configs.scheduler(), "prediction_type", "epsilon").equals("v_prediction") ? SD21_V : SD21_BASE;
        }
        return CUSTOM;
    }

    /** Whether {@code family} (a built-in name) is an SD 2.x one. */
    static boolean isSd2(String family) {
        return family.equals(SD21_BASE) || family.equals(SD21_V);
    }

    private static long[] shapeOf(StateDict file, String key) {
        return file.has(key) ? file.shape(key) : null;
    }

    private static long dim(long[] shape, int i) {
        return shape == null || shape.length <= i ? -1 : shape[i];
    }

    private static int count(StateDict file, Pattern indexed) {
        int max = -1;
        for (String key : file.keys()) {
            Matcher m = indexed.matcher(key);
            if (m.find()) max = Math.max(max, ConfigValues.index(m.group(1)));
        }
        return max == Integer.MAX_VALUE ? max : max + 1;
    }
}
