package dev.perfusion.io.layout;

import dev.perfusion.io.Safetensors;
import dev.perfusion.io.StateDict;
import dev.perfusion.io.pickle.TorchCheckpoint;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** The weights of one component folder (unet/, vae/, text_encoder/) of a diffusers model. */
final class DiffusersFolder {
    /** diffusers' weight file name, then transformers'. */
    private static final List<String> WEIGHT_NAMES = List.of("diffusion_pytorch_model", "model");
    /** The same, for PyTorch .bin files (transformers named them pytorch_model.bin). */
    private static final List<String> BIN_NAMES = List.of("diffusion_pytorch_model", "pytorch_model");

    private DiffusersFolder() {}

    /**
     * A VAE's weights under today's names: VAEs saved before diffusers 0.14 (the SD 1.x/2.x hub folders among them) name
     * their mid-block attention {@code query}, {@code key}, {@code value} and {@code proj_attn}, which diffusers renames
     * to {@code to_q}, {@code to_k}, {@code to_v} and {@code to_out.0} on loading; they failed here after the UNet was read.
     */
    static StateDict vaeWeights(Path componentDir, Optional<String> variant) throws IOException {
        StateDict stored = weights(componentDir, variant);
        Map<String, RenamedStateDict.Source> table = new java.util.LinkedHashMap<>();
        boolean renamed = false;
        for (String key : stored.keys()) {
            java.util.regex.Matcher m = DEPRECATED_VAE_ATTENTION.matcher(key);
            String target = m.matches() ? m.group(1) + DEPRECATED_NAMES.get(m.group(2)) + m.group(3) : key;
            renamed |= m.matches();
            boolean kernel = m.matches() && m.group(3).equals(".weight") && stored.shape(key).length == 4;
            table.put(target, new RenamedStateDict.Source(key, kernel ? RenamedStateDict.CONV_KERNEL_AS_LINEAR : RenamedStateDict.AS_STORED));
        }
        return renamed ? new RenamedStateDict(stored, table) : stored;
    }

    private static final java.util.regex.Pattern DEPRECATED_VAE_ATTENTION =
            java.util.regex.Pattern.compile("((?:encoder|decoder)\\.mid_block\\.attentions\\.\\d+\\.)(query|key|value|proj_attn)(\\.weight|\\.bias)");
    private static final Map<String, String> DEPRECATED_NAMES = Map.of("query", "to_q", "key", "to_k", "value", "to_v", "proj_attn", "to_out.0");

    /**
     * The component's weights: safetensors, else PyTorch .bin files (folders saved before safetensors; read without
     * running them), each single or sharded by an index. Without a variant the full-precision file is preferred and
     * an {@code .fp16} one is taken when it is the only one; with {@code variant} (e.g. "fp16") that one is preferred.
     */
    static StateDict weights(Path componentDir, Optional<String> variant) throws IOException {
        if (!Files.isDirectory(componentDir)) {
            throw new IOException(componentDir + ": missing (a diffusers folder has unet/, vae/ and text_encoder/ subfolders)");
        }
        List<String> suffixes = new ArrayList<>();
        variant.ifPresent(v -> suffixes.add("." + v));
        suffixes.add("");
        if (variant.isEmpty()) suffixes.add(".fp16");
        // the suffix first, then the format, as diffusers chooses: without a variant an fp32 .bin is taken before an
        // .fp16 safetensors (which held only the fp16-rounded weights)
        for (String suffix : suffixes) {
            for (String name : WEIGHT_NAMES) {
                Path single = componentDir.resolve(name + suffix + ".safetensors");
                if (Files.isRegularFile(single)) return Safetensors.open(single);
                Path index = componentDir.resolve(name + suffix + ".safetensors.index.json");
                if (Files.isRegularFile(index)) return ShardedStateDict.open(index);
            }
            for (String name : BIN_NAMES) {
                Path bin = componentDir.resolve(name + suffix + ".bin");
                if (Files.isRegularFile(bin)) return TorchCheckpoint.open(bin);
                Path index = componentDir.resolve(name + suffix + ".bin.index.json");
                if (Files.isRegularFile(index)) return ShardedStateDict.open(index);
            }
        }
        for (String suffix : suffixes) {
            for (String name : WEIGHT_NAMES) {
                Path folder = componentDir.resolve(name + suffix + ".safetensors");
                if (Files.isDirectory(folder)) {
                    throw new IOException(folder + ": a folder where the component's weights file (safetensors)"
                            + " is expected");
                }
            }
        }
        throw new IOException(componentDir + ": no weights (expected diffusion_pytorch_model.safetensors or"
                + " model.safetensors" + variant.map(v -> ", or their ." + v + " variant").orElse(", or an .fp16 variant")
                + ", or diffusion_pytorch_model.bin or pytorch_model.bin)");
    }
}
