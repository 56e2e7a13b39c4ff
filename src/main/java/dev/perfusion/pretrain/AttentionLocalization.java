package dev.perfusion.pretrain;

import dev.perfusion.pretrain.BaseModelRecipe.Localization;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.unet.Attention;
import dev.perfusion.world.Instance;
import dev.perfusion.world.Labels;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * Cross-attention localization on the world's object masks, after FastComposer (Xiao et al. 2023, eq. 5): every word
 * that names an object in a caption (its colour and its class) should be read by that object's pixels and not by the
 * rest of the picture. A word's map is its attention probability at each pixel, averaged over heads; M is its
 * object's mask at the layer's resolution. Two forms ({@link Localization}), each averaged over the named words and
 * the cross-attention layers:
 * <ul>
 *   <li>GAP, FastComposer's: mean(map outside M) - mean(map inside M). It also rewards a word for being read more:
 *       at weight 0.03 the object words took six times their share of attention (README);</li>
 *   <li>SHARE: the share of the map, scaled to sum 1, outside M: where a word is read, not how much. The UNet met it
 *       by reading the object words five times less.</li>
 * </ul>
 *
 * <p>Why: without it this world's UNet lets both objects of a pair read both object words (README: maps overlap
 * 0.87), so a concept's value, which enters through its word, reaches both objects. Key locking sends the concept's
 * word where its supercategory's word goes; this makes that place its own object.
 */
final class AttentionLocalization {
    /** Up to two objects a picture shows: the primary, then the second of a pair. */
    static final int OBJECTS = 2;

    private AttentionLocalization() {}

    /**
     * What {@code forward} computes; the cross-attention probabilities [B, heads, queries, tokens] of each layer it ran
     * land in {@code probabilities} (the observed passes lose the fused attention kernel).
     */
    static Tensor observing(List<Tensor> probabilities, Supplier<Tensor> forward) {
        int before = probabilities.size();
        // past the block's own scope (Scope.within)
        java.util.function.Consumer<Tensor> outer = Attention.observeCrossAttention(p -> probabilities.add(Scope.keep(p)));
        try {
            return forward.get();
        } finally {
            Attention.observeCrossAttention(outer);
            for (Tensor p : probabilities.subList(before, probabilities.size())) Scope.adopt(p);
        }
    }

    /**
     * Which token positions name which object [B, tokens, 2] (1 or 0): in each caption the primary object's class
     * word (its first occurrence) and the second object's (its last), each with the colour word just before it where
     * the caption says it; with {@code details}, also the object's pattern adjective and its accessory with the
     * accessory's colour ("spotted", "blue bow") where the caption names them. An empty caption names nothing.
     */
    static Tensor namingTokens(ClipTokenizer tokenizer, List<String> captions, List<Labels> labels, boolean details) {
        int rows = captions.size(), length = tokenizer.maxLength();
        float[] naming = new float[rows * length * OBJECTS];
        for (int r = 0; r < rows; r++) {
            long[] ids = tokenizer.encodeForModel(captions.get(r)).ids();
            List<Instance> objects = new ArrayList<>();
            objects.add(labels.get(r).instance());
            labels.get(r).second().ifPresent(p -> objects.add(p.instance()));
            for (int o = 0; o < objects.size(); o++) {
                Instance object = objects.get(o);
                int[] category = tokenizer.encode(object.category().word()), colour = tokenizer.encode(object.color().word());
                int at = find(ids, category, o == 0);
                if (at < 0) continue;
                if (matches(ids, colour, at - colour.length)) mark(naming, r, length, at - colour.length, colour.length, o);
                mark(naming, r, length, at, category.length, o);
                if (!details) continue;
                List<String> detailWords = new ArrayList<>();
                object.pattern().adjective().ifPresent(detailWords::add);
                object.accessory().phrase().ifPresent(a -> detailWords.add(object.accessoryColor().word() + " " + a));
                for (String words : detailWords) {
                    int[] tokens = tokenizer.encode(words);
                    int where = find(ids, tokens, o == 0);
                    if (where >= 0) mark(naming, r, length, where, tokens.length, o);
                }
            }
        }
        return Ops.fromFloats(naming, rows, length, OBJECTS);
    }

    /**
     * The loss, in {@code form}, of a forward pass's {@code probabilities} for pictures whose object masks are
     * {@code masks} [rows, 2, n, n] and whose captions' {@code naming} tokens are [rows, tokens, 2], summed over the
     * named tokens and divided by {@code namedInBatch}, so that the parts of a batch add up to the whole batch's loss.
     */
    static Tensor loss(Localization form, List<Tensor> probabilities, Tensor masks, Tensor naming, double namedInBatch) {
        if (probabilities.isEmpty()) throw new IllegalStateException("no cross-attention pass was observed");
        long rows = Ops.shape(masks)[0];
        Tensor sum = null;
        for (Tensor p : probabilities) {
            long queries = Ops.shape(p)[2], side = Math.round(Math.sqrt(queries));
            if (side * side != queries) throw new IllegalArgumentException("a cross-attention layer of " + queries + " queries is not a square map");
            Tensor map = Ops.mean(Ops.atLeastFloat32(p), 1, false); // [rows, queries, tokens], fp32 under mixed precision too
            Tensor inside = torch.adaptive_avg_pool2d(masks, new long[] {side, side}).reshape(rows, OBJECTS, queries);
            Tensor outside = Ops.add(Ops.neg(inside), 1.0);
            Tensor perWord = switch (form) { // [rows, tokens, 2]
                case GAP -> Ops.sub(regionMeans(map, outside), regionMeans(map, inside));
                case SHARE -> Ops.matmul(Ops.div(map, Ops.sum(map, 1, true).clamp_min(new Scalar(1e-12))).transpose(1, 2), outside.transpose(1, 2));
            };
            Tensor layer = Ops.mul(perWord, naming).sum();
            sum = sum == null ? layer : Ops.add(sum, layer);
        }
        return Ops.div(sum, probabilities.size() * Math.max(namedInBatch, 1));
    }

    /** Each token's mean attention over each object's region [rows, tokens, 2], a region weighing each pixel by its share in it. */
    private static Tensor regionMeans(Tensor map, Tensor region) {
        Tensor weights = Ops.div(region, Ops.sum(region, 2, true).clamp_min(new Scalar(1e-6)));
        return Ops.matmul(map.transpose(1, 2), weights.transpose(1, 2));
    }

    private static int find(long[] ids, int[] word, boolean first) {
        int found = -1;
        for (int t = 1; t + word.length <= ids.length; t++) {
            if (!matches(ids, word, t)) continue;
            if (first) return t;
            found = t;
        }
        return found;
    }

    private static boolean matches(long[] ids, int[] word, int at) {
        if (at < 1 || word.length == 0) return false; // position 0 is BOS
        for (int k = 0; k < word.length; k++) if (at + k >= ids.length || ids[at + k] != word[k]) return false;
        return true;
    }

    private static void mark(float[] naming, int row, int length, int at, int count, int object) {
        for (int t = at; t < at + count; t++) naming[(row * length + t) * OBJECTS + object] = 1;
    }
}
