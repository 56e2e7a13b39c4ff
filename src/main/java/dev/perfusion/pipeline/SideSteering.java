package dev.perfusion.pipeline;

import dev.perfusion.nn.Downsample2D;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.unet.CrossAttentionBias;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Draws each object of a prompt on the side the prompt puts it ("a cat on the left and a dog on the right"): in the
 * first denoising steps, while the picture's layout forms, every cross-attention adds {@code strength} to the logits of
 * an object's words on its own half of the picture and takes it from the other half, so that the words are read
 * where they belong (training-free layout control by attention modulation, as in Dense Diffusion, Kim et al. 2023,
 * with the halves as the layout). A prompt that names no side is drawn as it would be.
 *
 * <p>An object's words are the noun phrase that the placement belongs to: in each part of the prompt between "and"s
 * that names a side ("on the left", "to the right"), the words after its last "a" or "an" (or an opening "the")
 * before the first preposition (and before the side itself), skipping phrases that end in "of" ("a photo of a cat"):
 * "a small blue mug in the snow on the left" steers "small blue mug". In "a cat to the left of a dog" the dog goes to
 * the other side.
 */
public final class SideSteering implements CrossAttentionBias {
    /** The strength the commands draw with unless told otherwise: in logits, added on one half, taken on the other. */
    public static final double DEFAULT_STRENGTH = 8.0;
    /** The fraction of a picture's denoising steps that are steered, from the first. */
    public static final double STEERED_FRACTION = 0.4;
    private static final Set<String> ARTICLES = Set.of("a", "an");
    private static final Set<String> FRAME = Set.of("picture", "image", "photo", "frame", "canvas", "scene");
    private static final Set<String> PREPOSITIONS = Set.of("in", "on", "at", "under", "near", "next", "beside", "by", "with", "of");

    private final int[][] sides; // per conditioning row, per token position: -1 left, +1 right, 0 neither
    private final long height;
    private final long width;
    private final double strength;
    private final Map<Long, Tensor> biasByQueries = new HashMap<>();

    SideSteering(int[][] sides, long height, long width, double strength) {
        this.sides = sides;
        this.height = height;
        this.width = width;
        this.strength = strength;
    }

    /**
     * The steering of one batch, or null where no prompt names a side or {@code strength} is 0.
     *
     * @param tokenizer the tokenizer that encodes the prompts (with any learned concepts' words)
     * @param rows      the prompts as the UNet's batch holds them (the negative prompts first when guided)
     * @param latentHeight the latents' height, and {@code latentWidth} their width, at the UNet's input
     */
    public static SideSteering of(ClipTokenizer tokenizer, List<String> rows, long latentHeight, long latentWidth, double strength) {
        if (checkStrength(strength) == 0) return null;
        int[][] sides = new int[rows.size()][];
        boolean any = false;
        for (int r = 0; r < rows.size(); r++) {
            sides[r] = sidesOf(tokenizer.positionNames(tokenizer.encodeForModel(rows.get(r)).ids()));
            any |= Arrays.stream(sides[r]).anyMatch(s -> s != 0);
        }
        return any ? new SideSteering(sides, latentHeight, latentWidth, strength) : null;
    }

    /** {@code strength}, or an error saying what it must be. */
    public static double checkStrength(double strength) {
        if (!(strength >= 0) || Double.isInfinite(strength)) {
            throw new IllegalArgumentException("the side steering's strength must be a number of at least 0 (0: none), got " + strength);
        }
        return strength;
    }

    /** How many of a picture's first denoising steps are steered: those in which its layout forms. */
    public static int steeredSteps(int steps) {
        return (int) Math.round(STEERED_FRACTION * steps);
    }

    /** For each position of one prompt's tokens (as {@link ClipTokenizer#positionNames} names them), its side. */
    static int[] sidesOf(List<String> names) {
        int[] sides = new int[names.size()];
        List<Integer> part = new ArrayList<>();
        for (int p = 0; p <= names.size(); p++) {
            if (p < names.size() && !word(names, p).equals("and")) {
                part.add(p);
                continue;
            }
            steerPart(names, part, sides);
            part.clear();
        }
        return sides;
    }

    private static void steerPart(List<String> names, List<Integer> part, int[] sides) {
        int side = 0, sideAt = part.size();
        for (int i = 0; i + 2 < part.size(); i++) {
            String before = word(names, part.get(i)), which = word(names, part.get(i + 2));
            if ((before.equals("on") || before.equals("to")) && word(names, part.get(i + 1)).equals("the")
                    && (which.equals("left") || which.equals("right"))) {
                side = which.equals("left") ? -1 : 1;
                sideAt = i;
                break;
            }
        }
        if (side == 0) return;
        steerPhrase(names, part.subList(0, sideAt), side, sides);
        // "a cat to the left of a dog": the object after "of" goes to the other side
        int of = sideAt + 3;
        if (of < part.size() && word(names, part.get(of)).equals("of")) steerPhrase(names, part.subList(of + 1, part.size()), -side, sides);
    }

    /**
     * Steers the noun phrase of {@code words} to {@code side}: after its last article ("the" where it opens the
     * words: "the cat on the left", "to the left of the dog"), up to a preposition or a stop; "the picture" and the
     * like name the frame, not an object.
     */
    private static void steerPhrase(List<String> names, List<Integer> words, int side, int[] sides) {
        int start = -1, end = -1;
        boolean opening = true, definite = false;
        for (int i = 0; i < words.size(); i++) {
            String w = word(names, words.get(i));
            boolean the = opening && w.equals("the");
            if (!w.startsWith("<|")) opening = false;
            if (ARTICLES.contains(w) || the) {
                start = i + 1;
                end = -1;
                definite = the;
            } else if (start >= 0 && end < 0 && PREPOSITIONS.contains(w)) {
                if (w.equals("of")) start = -1; // "a photo of a ...": the object comes after
                else end = i;
            } else if (start >= 0 && end < 0 && endsPhrase(w)) {
                end = i;
            }
        }
        if (start < 0) return;
        int stop = end < 0 ? words.size() : end;
        if (definite && stop == start + 1 && FRAME.contains(word(names, words.get(start)))) return;
        for (int i = start; i < stop; i++) sides[words.get(i)] = side;
    }

    /** A comma, a full stop and the like, or the end of the text and its padding (a hyphen joins, as in "blue-eyed"). */
    private static boolean endsPhrase(String token) {
        return token.startsWith("<|") || token.equals(ClipTokenizer.PADDING) || token.matches("[,.;:!?]+");
    }

    private static String word(List<String> names, int position) {
        return names.get(position).strip().toLowerCase(Locale.ROOT);
    }

    /** The token positions of conditioning row {@code row} and their sides (-1 left, +1 right, 0 neither). */
    public int[] sides(int row) { return sides[row].clone(); }

    @Override
    public Tensor logits(long batch, long queries, long keys) {
        if (batch != sides.length) {
            throw new IllegalStateException("side steering made for " + sides.length + " prompts, applied to a batch of " + batch);
        }
        return biasByQueries.computeIfAbsent(queries, q -> Scope.keep(build(q, keys)));
    }

    private Tensor build(long queries, long keys) {
        long[] level = Downsample2D.levelSize(height, width, queries);
        long h = level[0], w = level[1];
        float[] values = new float[(int) (sides.length * queries * keys)];
        for (int b = 0; b < sides.length; b++) {
            for (int t = 0; t < Math.min(keys, sides[b].length); t++) {
                if (sides[b][t] == 0) continue;
                for (long y = 0; y < h; y++) {
                    for (long x = 0; x < w; x++) {
                        int half = 2 * x + 1 < w ? -1 : 2 * x + 1 > w ? 1 : 0; // the middle column of an odd width: neither
                        values[(int) ((b * queries + y * w + x) * keys + t)] = (float) (half * sides[b][t] * strength);
                    }
                }
            }
        }
        return Ops.fromFloats(values, sides.length, 1, queries, keys);
    }

    /** Frees the biases it made (kept past the steps' scopes for the steps after). */
    public void release() {
        biasByQueries.values().forEach(Tensor::releaseReference);
        biasByQueries.clear();
    }
}
