package dev.perfusion.io.layout;

import dev.perfusion.io.StateDict;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * A rename table at block granularity: each original (CompVis/LDM) block prefix maps to a diffusers block
 * prefix, and the block's kind says how the names inside it change. Generated from a config, it is matched
 * against a file's keys: every key must fall in a block, and every block must hold at least one key, so a config
 * that does not describe the file is reported instead of producing a half-filled model.
 */
public final class BlockTable {

    /** How names inside a block change between the layouts. */
    public enum Kind {
        /** A single layer: only {@code weight}/{@code bias} follow the prefix. */
        LEAF(Map.of()),
        /** A sub-tree whose inner names are the same in both layouts (the UNet's spatial transformers). */
        SAME_INSIDE(null),
        /** LDM ResBlock → diffusers ResnetBlock2D (the UNet's, with a time-embedding projection). */
        UNET_RESNET(Map.of("in_layers.0", "norm1", "in_layers.2", "conv1", "out_layers.0", "norm2",
                "out_layers.3", "conv2", "emb_layers.1", "time_emb_proj", "skip_connection", "conv_shortcut")),
        /** LDM autoencoder ResnetBlock → diffusers ResnetBlock2D (no time embedding). */
        VAE_RESNET(Map.of("norm1", "norm1", "conv1", "conv1", "norm2", "norm2", "conv2", "conv2",
                "nin_shortcut", "conv_shortcut")),
        /** LDM AttnBlock (1x1 convolutions) → diffusers Attention (linear layers). */
        VAE_ATTENTION(Map.of("norm", "group_norm", "q", "to_q", "k", "to_k", "v", "to_v", "proj_out", "to_out.0"));

        /** Inner module path → diffusers inner module path; null: unchanged. */
        private final Map<String, String> inner;

        Kind(Map<String, String> inner) { this.inner = inner; }
    }

    /** One row of the table; prefixes end with a dot. */
    public record Block(String ldmPrefix, String diffusersPrefix, Kind kind) {}

    /** A key renamed: the block it fell in and its diffusers name. */
    public record Renamed(Block block, String name) {}

    private final Map<String, Block> byLdmPrefix = new LinkedHashMap<>();

    void add(String ldmPrefix, String diffusersPrefix, Kind kind) {
        Block previous = byLdmPrefix.put(ldmPrefix + ".", new Block(ldmPrefix + ".", diffusersPrefix + ".", kind));
        if (previous != null) throw new IllegalStateException("block " + ldmPrefix + " listed twice");
    }

    public List<Block> blocks() { return List.copyOf(byLdmPrefix.values()); }

    /**
     * A block or layer number from a tensor name; one past any int (a damaged or hostile name) reads as
     * Integer.MAX_VALUE, beyond every model, instead of failing the parse.
     */
    static int index(String digits) {
        return digits.length() > 9 ? Integer.MAX_VALUE : Integer.parseInt(digits);
    }

    /** The diffusers name of {@code key} (relative to the component's prefix), or null when it fits no block. */
    public Renamed rename(String key) {
        for (int dot = key.lastIndexOf('.'); dot > 0; dot = key.lastIndexOf('.', dot - 1)) {
            Block block = byLdmPrefix.get(key.substring(0, dot + 1));
            if (block == null) continue;
            String rest = key.substring(dot + 1);
            if (block.kind().inner == null) return new Renamed(block, block.diffusersPrefix() + rest);
            int lastDot = rest.lastIndexOf('.');
            String module = lastDot < 0 ? "" : rest.substring(0, lastDot);
            String param = rest.substring(lastDot + 1);
            if (module.isEmpty()) {
                return block.kind() == Kind.LEAF ? new Renamed(block, block.diffusersPrefix() + param) : null;
            }
            String renamed = block.kind().inner.get(module);
            return renamed == null ? null : new Renamed(block, block.diffusersPrefix() + renamed + "." + param);
        }
        return null;
    }

    /**
     * The other way: the original name (relative to the component's prefix) of the diffusers parameter {@code name},
     * and its block; null when no block holds it.
     */
    public Renamed ldmName(String name) {
        for (int dot = name.lastIndexOf('.'); dot > 0; dot = name.lastIndexOf('.', dot - 1)) {
            String prefix = name.substring(0, dot + 1);
            for (Block block : byLdmPrefix.values()) {
                if (!block.diffusersPrefix().equals(prefix)) continue;
                String rest = name.substring(dot + 1);
                if (block.kind().inner == null) return new Renamed(block, block.ldmPrefix() + rest);
                int lastDot = rest.lastIndexOf('.');
                if (lastDot < 0) return block.kind() == Kind.LEAF ? new Renamed(block, block.ldmPrefix() + rest) : null;
                String module = rest.substring(0, lastDot);
                for (Map.Entry<String, String> inner : block.kind().inner.entrySet()) {
                    if (inner.getValue().equals(module)) return new Renamed(block, block.ldmPrefix() + inner.getKey() + rest.substring(lastDot));
                }
                return null;
            }
        }
        return null;
    }

    /**
     * Applies the table to the keys of {@code file} under {@code prefix}. VAE attention weights stored as 1x1
     * kernels become linear weights. Fails, naming {@code source}, when keys fit no block or blocks hold no key.
     */
    RenamedStateDict apply(StateDict file, Path source, String prefix, String what, String configDescription) {
        Map<String, RenamedStateDict.Source> table = new TreeMap<>();
        List<String> unfit = new ArrayList<>();
        Set<Block> used = new LinkedHashSet<>();
        for (String key : new TreeSet<>(file.keys())) {
            if (!key.startsWith(prefix)) continue;
            Renamed r = rename(key.substring(prefix.length()));
            if (r == null) {
                unfit.add(key);
                continue;
            }
            used.add(r.block());
            RenamedStateDict.Transform transform = RenamedStateDict.AS_STORED;
            if (r.block().kind() == Kind.VAE_ATTENTION && r.name().endsWith(".weight")
                    && !r.name().endsWith("group_norm.weight") && file.shape(key).length == 4) {
                transform = RenamedStateDict.CONV_KERNEL_AS_LINEAR;
            }
            RenamedStateDict.Source clash = table.put(r.name(), new RenamedStateDict.Source(key, transform));
            if (clash != null) {
                throw new IllegalArgumentException(source + ": tensors '" + clash.key() + "' and '" + key
                        + "' both map to the " + what + " parameter '" + r.name() + "'");
            }
        }
        List<String> empty = new ArrayList<>();
        for (Block b : byLdmPrefix.values()) {
            if (!used.contains(b)) empty.add(prefix + b.ldmPrefix() + "* (" + b.diffusersPrefix() + "*)");
        }
        if (!unfit.isEmpty() || !empty.isEmpty()) {
            StringBuilder msg = new StringBuilder(source + ": the " + what + " weights do not fit the " + what
                    + " config (" + configDescription + ")");
            if (!unfit.isEmpty()) {
                msg.append("; ").append(unfit.size()).append(" tensors match no block of that config: ")
                        .append(String.join(", ", unfit.subList(0, Math.min(5, unfit.size()))))
                        .append(unfit.size() > 5 ? ", ..." : "");
            }
            if (!empty.isEmpty()) {
                msg.append("; the file has no tensors for ").append(empty.size()).append(" blocks the config expects: ")
                        .append(String.join(", ", empty.subList(0, Math.min(5, empty.size()))))
                        .append(empty.size() > 5 ? ", ..." : "");
            }
            msg.append("; give a diffusers folder whose config files describe this model");
            throw new ModelInputException(msg.toString(), ModelInputException.Input.CONFIG_FOLDER);
        }
        return new RenamedStateDict(file, table);
    }
}
