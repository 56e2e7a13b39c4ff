package dev.perfusion.io.layout;

import dev.perfusion.io.StateDict;
import dev.perfusion.unet.UNetConfig;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Recognises the standard Stable Diffusion families from tensor shapes, so that a single-file checkpoint can be
 * paired with the built-in diffusers configs; the shapes are compared with what those configs say
 * ({@link Signature#fits}):
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

        /**
         * Whether these are the shapes of a checkpoint that {@code configs} describe: what the LDM layout puts in each
         * tensor's shape is read off the configs. An OpenCLIP text tower (SD 2.x) holds one layer more than the
         * config's text encoder, which stops at the penultimate one; converted back from diffusers, it is a CLIP text
         * model with the config's layers.
         */
        public boolean fits(ModelConfigs configs) {
            UNetConfig unet = configs.unet();
            int layers = configs.textEncoder().numHiddenLayers();
            boolean text = textEncoder == LdmTextEncoder.Layout.CLIP ? textLayers == layers
                    : textEncoder == LdmTextEncoder.Layout.OPEN_CLIP && (textLayers == layers || textLayers == layers + 1);
            return contextDim == unet.crossAttentionDim() && inChannels == unet.inChannels()
                    && modelChannels == unet.blockOutChannels().get(0) && inputBlocks == LdmUnet.inputBlocks(unet)
                    && linearProjIn == unet.useLinearProjection() && text && textWidth == configs.textEncoder().hiddenSize()
                    && latentChannels == configs.vae().latentChannels();
        }

        /** SD 1.x came with a transformers CLIP text model only; the OpenCLIP tower is SD 2.x's. */
        boolean isSd1() {
            return textEncoder == LdmTextEncoder.Layout.CLIP && fits(ModelConfigs.builtIn(SD15));
        }

        boolean isSd2() {
            return fits(ModelConfigs.builtIn(SD21_BASE));
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
        return recognize(file, source, Map.of());
    }

    /**
     * The same, with what the file's own metadata says first: the family this project's {@code convert} recorded (a
     * converted SD 2.x 768-v model was read by its name as the epsilon base model, silently), then ModelSpec's
     * {@code modelspec.prediction_type} (kohya's and other trainers' files), then the name.
     */
    public static String recognize(StateDict file, Path source, Map<String, String> metadata) {
        Signature s = signature(file);
        String recorded = metadata.get("family");
        if (CUSTOM.equals(recorded)) {
            throw new ModelInputException(source + ": converted from a model whose configs are no built-in family's (its metadata says "
                    + "family custom): give a diffusers folder with those configs", ModelInputException.Input.CONFIG_FOLDER);
        }
        if (SD15.equals(recorded) && s.isSd1() || (SD21_V.equals(recorded) || SD21_BASE.equals(recorded)) && s.isSd2()) return recorded;
        String prediction = metadata.get("modelspec.prediction_type");
        if (s.isSd1()) {
            if (prediction != null && prediction.toLowerCase(Locale.ROOT).startsWith("v")) { // no built-in family is a v-prediction SD 1.x
                throw new ModelInputException(source + ": an SD 1.x model whose metadata says v-prediction (modelspec.prediction_type "
                        + prediction + "): give a diffusers folder whose configs say so", ModelInputException.Input.CONFIG_FOLDER);
            }
            return SD15;
        }
        if (s.isSd2()) {
            if (prediction != null && prediction.toLowerCase(Locale.ROOT).startsWith("v")) return SD21_V;
            if (prediction != null && prediction.toLowerCase(Locale.ROOT).startsWith("eps")) return SD21_BASE;
            return namesVPrediction(source) ? SD21_V : SD21_BASE;
        }
        throw new ModelInputException(source + ": unknown model family (" + s.describe() + "; built-in families: "
                + String.join(", ", BUILT_IN) + "): give a diffusers folder whose config files describe this model",
                ModelInputException.Input.CONFIG_FOLDER);
    }

    /** Whether the file name marks an SD 2.x 768-v (v-prediction) model. */
    public static boolean namesVPrediction(Path source) {
        Path name = source.getFileName();
        return name != null && V_PREDICTION_NAME.matcher(name.toString().toLowerCase(Locale.ROOT)).find();
    }

    /**
     * The family whose built-in configs these configs match in architecture (UNet channels and context, text encoder
     * width) and, where several do, in prediction type; else {@link #CUSTOM}.
     */
    public static String classify(ModelConfigs configs) {
        List<String> sameArchitecture = BUILT_IN.stream().filter(f -> sameArchitecture(configs, ModelConfigs.builtIn(f))).toList();
        String prediction = configs.scheduler().predictionType();
        // a v-prediction SD 1.x is no sd15: its file, converted, would be read back as an epsilon model
        return sameArchitecture.stream().filter(f -> ModelConfigs.builtIn(f).scheduler().predictionType().equals(prediction))
                .findFirst().orElse(CUSTOM);
    }

    private static boolean sameArchitecture(ModelConfigs a, ModelConfigs b) {
        return a.unet().blockOutChannels().equals(b.unet().blockOutChannels()) && a.unet().inChannels() == b.unet().inChannels()
                && a.unet().crossAttentionDim() == b.unet().crossAttentionDim()
                && a.textEncoder().hiddenSize() == b.textEncoder().hiddenSize();
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
            if (m.find()) max = Math.max(max, BlockTable.index(m.group(1)));
        }
        return max == Integer.MAX_VALUE ? max : max + 1;
    }
}
