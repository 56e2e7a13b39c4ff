package dev.perfusion.io.layout;

import dev.perfusion.io.StateDict;
import dev.perfusion.text.ClipTextConfig;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The text encoder of a single-file checkpoint in transformers CLIPTextModel names. Two layouts exist:
 * <ul>
 * <li>SD 1.x: a transformers CLIPTextModel stored under {@code cond_stage_model.transformer.} (newer files with the
 * {@code text_model.} infix, older ones without): the names inside are already transformers names.</li>
 * <li>SD 2.x: an OpenCLIP text tower under {@code cond_stage_model.model.}: {@code transformer.resblocks.N} with a
 * fused {@code attn.in_proj_weight/bias} ([3D, D] / [3D], rows q, k, v) that is split into q/k/v projections,
 * {@code token_embedding.weight}, {@code positional_embedding} (a bare tensor), {@code ln_final}. SD 2.x uses
 * the penultimate layer, so diffusers' text encoder has one layer less than the tower (23 of 24); layers at or
 * beyond the config's {@code num_hidden_layers}, and {@code text_projection}/{@code logit_scale}, are left
 * out.</li>
 * </ul>
 */
public final class LdmTextEncoder {
    public static final String CLIP_PREFIX = "cond_stage_model.transformer.";
    public static final String OPEN_CLIP_PREFIX = "cond_stage_model.model.";

    /** Which text encoder layout a single file uses. */
    public enum Layout { CLIP, OPEN_CLIP }

    private static final Pattern CLIP_LAYER = Pattern.compile("^text_model\\.encoder\\.layers\\.(\\d+)\\.");
    private static final Pattern RESBLOCK = Pattern.compile("^transformer\\.resblocks\\.(\\d+)\\.(.+)$");
    private static final Map<String, String> OPEN_CLIP_TOP = Map.of(
            "token_embedding.weight", "text_model.embeddings.token_embedding.weight",
            "positional_embedding", "text_model.embeddings.position_embedding.weight",
            "ln_final.weight", "text_model.final_layer_norm.weight",
            "ln_final.bias", "text_model.final_layer_norm.bias");
    private static final Map<String, String> OPEN_CLIP_LAYER = Map.of(
            "ln_1", "layer_norm1", "ln_2", "layer_norm2", "attn.out_proj", "self_attn.out_proj",
            "mlp.c_fc", "mlp.fc1", "mlp.c_proj", "mlp.fc2");
    /** Tensors of the OpenCLIP tower the text encoder does not use. */
    private static final List<String> OPEN_CLIP_UNUSED = List.of("text_projection", "logit_scale", "attn_mask");

    private LdmTextEncoder() {}

    /** The layout of the file's text encoder, if it has one. */
    public static Optional<Layout> detect(StateDict file) {
        for (String key : file.keys()) {
            if (key.startsWith(OPEN_CLIP_PREFIX)) return Optional.of(Layout.OPEN_CLIP);
        }
        for (String key : file.keys()) {
            if (key.startsWith(CLIP_PREFIX)) return Optional.of(Layout.CLIP);
        }
        return Optional.empty();
    }

    /** The text encoder under transformers names, checked against the CLIPTextModel {@code config}. */
    public static RenamedStateDict view(StateDict file, Path source, ClipTextConfig config, String configOrigin) {
        Layout layout = detect(file).orElseThrow(() -> new IllegalArgumentException(source
                + ": no text encoder (no tensors named " + CLIP_PREFIX + "* or " + OPEN_CLIP_PREFIX + "*)"));
        return layout == Layout.CLIP ? clipView(file, source, config, configOrigin)
                : openClipView(file, source, config, configOrigin);
    }

    /** SD 1.x: transformers names behind {@code cond_stage_model.transformer.[text_model.]}. */
    public static RenamedStateDict clipView(StateDict file, Path source, ClipTextConfig config, String configOrigin) {
        int layers = config.numHiddenLayers();
        boolean infix = file.keys().stream().anyMatch(k -> k.startsWith(CLIP_PREFIX + "text_model."));
        String prefix = infix ? CLIP_PREFIX + "text_model." : CLIP_PREFIX;
        Map<String, RenamedStateDict.Source> table = new TreeMap<>();
        TreeSet<Integer> present = new TreeSet<>();
        for (String key : new TreeSet<>(file.keys())) {
            if (!key.startsWith(prefix)) continue;
            String name = "text_model." + key.substring(prefix.length());
            // position_ids is a buffer of arange(77) (int64 or float in real files), not a weight
            if (name.equals("text_model.embeddings.position_ids")) continue;
            Matcher m = CLIP_LAYER.matcher(name);
            if (m.find()) {
                int layer = BlockTable.index(m.group(1));
                present.add(layer);
                if (layer >= layers) continue;
            }
            table.put(name, new RenamedStateDict.Source(key, RenamedStateDict.AS_STORED));
        }
        checkLayers(source, present, layers, prefix + "encoder.layers.", configOrigin);
        return new RenamedStateDict(file, table);
    }

    /** SD 2.x: the OpenCLIP tower behind {@code cond_stage_model.model.}, fused attention split into q/k/v. */
    public static RenamedStateDict openClipView(StateDict file, Path source, ClipTextConfig config, String configOrigin) {
        int layers = config.numHiddenLayers();
        long width = config.hiddenSize();
        Map<String, RenamedStateDict.Source> table = new TreeMap<>();
        TreeSet<Integer> present = new TreeSet<>();
        List<String> unfit = new ArrayList<>();
        for (String key : new TreeSet<>(file.keys())) {
            if (!key.startsWith(OPEN_CLIP_PREFIX)) continue;
            String rest = key.substring(OPEN_CLIP_PREFIX.length());
            if (OPEN_CLIP_UNUSED.contains(rest) || rest.startsWith("visual.")) continue;
            if (OPEN_CLIP_TOP.containsKey(rest)) {
                table.put(OPEN_CLIP_TOP.get(rest), new RenamedStateDict.Source(key, RenamedStateDict.AS_STORED));
                continue;
            }
            Matcher m = RESBLOCK.matcher(rest);
            if (!m.matches()) {
                unfit.add(key);
                continue;
            }
            int layer = BlockTable.index(m.group(1));
            present.add(layer);
            if (layer >= layers) continue;
            String target = "text_model.encoder.layers." + layer + ".";
            String inner = m.group(2);
            if (inner.equals("attn.in_proj_weight") || inner.equals("attn.in_proj_bias")) {
                long[] shape = file.shape(key);
                long rows = shape.length == 0 ? 0 : shape[0];
                if (rows != 3 * width) {
                    throw new IllegalArgumentException(file.describe(key) + " has " + rows + " rows, but the text encoder"
                            + " config (from " + configOrigin + ") has hidden_size " + width + " (expected 3 x " + width + ")");
                }
                String param = inner.endsWith("weight") ? "weight" : "bias";
                String[] projections = {"q_proj", "k_proj", "v_proj"};
                for (int i = 0; i < 3; i++) {
                    table.put(target + "self_attn." + projections[i] + "." + param,
                            new RenamedStateDict.Source(key, new RenamedStateDict.Rows(i * width, width)));
                }
                continue;
            }
            int dot = inner.lastIndexOf('.');
            String module = dot < 0 ? null : OPEN_CLIP_LAYER.get(inner.substring(0, dot));
            if (module == null) {
                unfit.add(key);
                continue;
            }
            table.put(target + module + inner.substring(dot), new RenamedStateDict.Source(key, RenamedStateDict.AS_STORED));
        }
        if (!unfit.isEmpty()) {
            throw new IllegalArgumentException(source + ": " + unfit.size() + " OpenCLIP text encoder tensors have no"
                    + " CLIPTextModel counterpart: " + String.join(", ", unfit.subList(0, Math.min(5, unfit.size())))
                    + (unfit.size() > 5 ? ", ..." : ""));
        }
        checkLayers(source, present, layers, OPEN_CLIP_PREFIX + "transformer.resblocks.", configOrigin);
        return new RenamedStateDict(file, table);
    }

    private static void checkLayers(Path source, TreeSet<Integer> present, int layers, String where, String configOrigin) {
        for (int i = 0; i < layers; i++) {
            if (!present.contains(i)) {
                throw new ModelInputException(source + ": the text encoder config (from " + configOrigin + ") has "
                        + layers + " layers but the file has " + present.size() + " (no tensors named " + where + i
                        + ".*); give a diffusers folder whose config files describe this model", ModelInputException.Input.CONFIG_FOLDER);
            }
        }
    }
}
