package dev.perfusion.perfusion;

import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

import java.util.List;

/**
 * How a concept changes the K and V projections of the UNet's cross-attention layers: one key tensor and one value
 * tensor per layer, in the UNet's cross-attention order. The kind says what the tensors are and how they act; it is
 * what a concept file records, so a file is applied the same way whichever method trained it.
 */
public record ProjectionEdit(Kind kind, List<Tensor> keys, List<Tensor> values) {
    public enum Kind {
        /** No layer changes: the concept is its word embedding alone (textual inversion). */
        NONE("none", 0),
        /** Perfusion's edit, h = W e⊥ + g o* with the sigmoid gate g; keys and values are the targets o*_K, o*_V [out]. */
        GATED_RANK_ONE("gated-rank-one", 1),
        /** The same edit with g = s: ROME's closed form, without a gate; targets as above. */
        RANK_ONE("rank-one", 1),
        /** The whole K and V weights [out, D] replaced by tuned copies (Custom Diffusion's fine-tune). */
        WEIGHTS("weights", 2);

        /** The name in a concept file's metadata. */
        public final String id;
        /** Rank of each key and value tensor. */
        public final int tensorRank;

        Kind(String id, int tensorRank) {
            this.id = id;
            this.tensorRank = tensorRank;
        }

        /** The name of layer {@code l}'s key or value tensor in a concept file. */
        public String tensorName(int layer, GatedRankOneProjection.Role role) {
            String tensor = this == WEIGHTS ? "weight" : "target";
            return "layers." + layer + "." + (role == GatedRankOneProjection.Role.KEY ? "key_" : "value_") + tensor;
        }

        public static Kind of(String id) {
            for (Kind k : values()) if (k.id.equals(id)) return k;
            throw new IllegalArgumentException("unknown projection edit '" + id + "' (known: "
                    + String.join(", ", java.util.Arrays.stream(values()).map(k -> k.id).toList()) + ")");
        }
    }

    public ProjectionEdit {
        if (keys.size() != values.size()) throw new IllegalArgumentException(keys.size() + " key tensors but " + values.size() + " value tensors");
        if (kind == Kind.NONE && !keys.isEmpty()) throw new IllegalArgumentException("an edit of kind 'none' holds no tensors");
        if (kind != Kind.NONE && keys.isEmpty()) throw new IllegalArgumentException("an edit of kind '" + kind.id + "' needs a tensor per layer");
        for (int l = 0; l < keys.size(); l++) {
            for (Tensor t : List.of(keys.get(l), values.get(l))) {
                if (t.dim() != kind.tensorRank) {
                    throw new IllegalArgumentException("layer " + l + ": a '" + kind.id + "' edit holds tensors of rank "
                            + kind.tensorRank + ", got " + Ops.shapeString(t));
                }
            }
        }
        keys = List.copyOf(keys);
        values = List.copyOf(values);
    }

    /** The word embedding alone. */
    public static ProjectionEdit none() { return new ProjectionEdit(Kind.NONE, List.of(), List.of()); }

    public int layerCount() { return keys.size(); }

    /** The name of layer {@code l}'s key or value tensor in a concept file. */
    public String tensorName(int layer, GatedRankOneProjection.Role role) { return kind.tensorName(layer, role); }

    /** A concept file's tensor name in the paper's words, for messages ("layers.3.value_target": o*_V of layer 3). */
    public static String meaning(String tensorName) {
        String[] parts = tensorName.split("\\.");
        if (parts.length == 3 && parts[0].equals("layers")) {
            String what = switch (parts[2]) {
                case "key_target" -> "the key target o*_K";
                case "value_target" -> "the value target o*_V";
                case "key_weight" -> "the fine-tuned K weight";
                case "value_weight" -> "the fine-tuned V weight";
                default -> parts[2];
            };
            return what + " of layer " + parts[1];
        }
        return switch (tensorName) {
            case "embedding" -> "the word embedding v*";
            case "i_star" -> "the target input i*";
            default -> tensorName;
        };
    }
}
