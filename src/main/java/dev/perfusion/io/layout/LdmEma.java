package dev.perfusion.io.layout;

import dev.perfusion.io.StateDict;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The EMA copies of an original (LDM) checkpoint: LDM's LitEma keeps one per weight of {@code model.*}, named
 * {@code model_ema.} + the name after {@code model.} with its dots removed
 * ({@code model.diffusion_model.input_blocks.0.0.weight} → {@code model_ema.diffusion_modelinput_blocks00weight}),
 * beside {@code model_ema.decay} and {@code model_ema.num_updates}. A "full EMA" checkpoint holds both sets; the EMA
 * weights are the ones to sample with, so they are chosen when the file has a copy of every UNet weight.
 */
public final class LdmEma {
    public static final String PREFIX = "model_ema.";

    private LdmEma() {}

    /** The weights to build the model from, and, when the file held EMA copies, which set was used. */
    public record Choice(StateDict weights, Optional<String> note) {}

    /** The EMA copy's name of an LDM key under {@code model.}. */
    static String emaName(String key) {
        return PREFIX + key.substring("model.".length()).replace(".", "");
    }

    /**
     * {@code file} itself, or a view of it in which each UNet weight is read from its EMA copy: when {@code preferEma}
     * and the file holds a copy of every UNet weight (of the same shape).
     */
    public static Choice choose(StateDict file, Path source, boolean preferEma) {
        List<String> unet = file.keys().stream().filter(k -> k.startsWith(LdmUnet.PREFIX)).toList();
        Map<String, String> copies = new LinkedHashMap<>();
        for (String k : unet) {
            String ema = emaName(k);
            if (file.has(ema)) copies.put(k, ema);
        }
        String name = source.getFileName().toString();
        if (copies.isEmpty()) return new Choice(file, Optional.empty());
        if (!preferEma) {
            return new Choice(file, Optional.of(name + ": the non-EMA UNet weights were used, as asked (the file also holds"
                    + " EMA copies, model_ema.*)"));
        }
        if (copies.size() < unet.size()) {
            return new Choice(file, Optional.of(name + ": the non-EMA UNet weights were used: model_ema.* holds copies of only "
                    + copies.size() + " of its " + unet.size() + " UNet weights"));
        }
        Map<String, RenamedStateDict.Source> table = new LinkedHashMap<>();
        for (String k : file.keys()) {
            if (k.startsWith(PREFIX)) continue;
            String from = copies.getOrDefault(k, k);
            if (!Arrays.equals(file.shape(k), file.shape(from))) {
                throw new IllegalArgumentException(file.describe(from) + " has shape " + Arrays.toString(file.shape(from))
                        + ", but the weight it is the EMA copy of, " + k + ", has " + Arrays.toString(file.shape(k)));
            }
            table.put(k, new RenamedStateDict.Source(from, RenamedStateDict.AS_STORED));
        }
        return new Choice(new RenamedStateDict(file, table), Optional.of(name + ": the EMA UNet weights (model_ema.*, "
                + copies.size() + " tensors) were used; the file also holds the non-EMA ones"));
    }
}
