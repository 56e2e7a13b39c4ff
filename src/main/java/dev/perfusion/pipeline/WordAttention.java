package dev.perfusion.pipeline;

import dev.perfusion.io.ImageGrid;
import dev.perfusion.tensor.Ops;
import dev.perfusion.text.ClipTokenizer;
import org.bytedeco.pytorch.Tensor;

import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Where one picture's pixels read each token of its prompt ({@link CrossAttentionMaps}), for the positions from BOS
 * to EOS: a map per token at the latent resolution, and its mean over the picture's left and right halves, which says
 * whether a word of a two-object prompt is read by its own object or by both. The padding after EOS is summed into one
 * map: the UNet reads it too, and whatever a concept's gate lets into it reaches every pixel that does.
 *
 * @param maps             per token, the map's rows top to bottom, each left to right ({@code height * width} values)
 * @param padding          the padding positions' maps summed (zeros where there is none)
 * @param paddingPositions how many positions that sum holds
 */
public record WordAttention(List<String> tokens, List<float[]> maps, float[] padding, int paddingPositions, int height, int width) {
    public WordAttention {
        tokens = List.copyOf(tokens);
        maps = List.copyOf(maps);
        if (tokens.size() != maps.size()) throw new IllegalArgumentException(tokens.size() + " tokens but " + maps.size() + " maps");
        if (padding.length != height * width) throw new IllegalArgumentException("a padding map of " + padding.length + " values for " + height + "x" + width);
    }

    /** Without padding. */
    public WordAttention(List<String> tokens, List<float[]> maps, int height, int width) {
        this(tokens, maps, new float[height * width], 0, height, width);
    }

    /** From the mean maps [1, positions, h, w] of one prompt whose positions {@code names} names. */
    public static WordAttention of(Tensor meanMaps, List<String> names) {
        long[] s = Ops.shape(meanMaps);
        int h = (int) s[2], w = (int) s[3];
        List<String> tokens = new ArrayList<>();
        List<float[]> maps = new ArrayList<>();
        float[] padding = new float[h * w];
        int paddingPositions = 0;
        for (int t = 0; t < names.size(); t++) {
            float[] map = Ops.toFloats(meanMaps.select(0, 0).select(0, t));
            if (names.get(t).equals(ClipTokenizer.PADDING)) {
                for (int i = 0; i < map.length; i++) padding[i] += map[i];
                paddingPositions++;
            } else {
                tokens.add(names.get(t));
                maps.add(map);
            }
        }
        return new WordAttention(tokens, maps, padding, paddingPositions, h, w);
    }

    /** The mean of token {@code t}'s map over the whole picture. */
    public double mean(int t) {
        return meanOver(t, 0, width);
    }

    /** Its mean over the left half of the picture (the middle column, for an odd width, in neither half). */
    public double left(int t) {
        return meanOver(t, 0, width / 2);
    }

    public double right(int t) {
        return meanOver(t, width - width / 2, width);
    }

    /** The padding's summed map's mean over the whole picture: the share of attention the padding takes. */
    public double paddingMean() {
        return meanOver(padding, 0, width);
    }

    private double meanOver(int t, int fromColumn, int toColumn) {
        return meanOver(maps.get(t), fromColumn, toColumn);
    }

    private double meanOver(float[] m, int fromColumn, int toColumn) {
        double sum = 0;
        for (int y = 0; y < height; y++) for (int x = fromColumn; x < toColumn; x++) sum += m[y * width + x];
        return sum / (height * (toColumn - fromColumn));
    }

    /** The first position of {@code token}, or -1. */
    public int positionOf(String token) {
        return tokens.indexOf(token);
    }

    /**
     * How much the maps of tokens {@code a} and {@code b} cover the same pixels: the overlap (histogram intersection)
     * of the two maps, each scaled to sum to one. 1: the same pixels read both, in the same proportions; 0: no pixel
     * reads both. Where two objects' words overlap, each object takes the other word's value too.
     */
    public double overlap(int a, int b) {
        float[] ma = maps.get(a), mb = maps.get(b);
        double sa = 0, sb = 0, common = 0;
        for (int i = 0; i < ma.length; i++) {
            sa += ma[i];
            sb += mb[i];
        }
        for (int i = 0; i < ma.length; i++) common += Math.min(ma[i] / sa, mb[i] / sb);
        return common;
    }

    /**
     * The {@link #overlap} of each pair of {@code words} that are both tokens here, in the order given, keyed
     * "A and B"; a word that is not a token of the prompt is left out.
     */
    public java.util.Map<String, Double> overlaps(List<String> words) {
        java.util.Map<String, Double> out = new java.util.LinkedHashMap<>();
        for (int a = 0; a < words.size(); a++) {
            for (int b = a + 1; b < words.size(); b++) {
                int pa = positionOf(words.get(a)), pb = positionOf(words.get(b));
                if (pa >= 0 && pb >= 0) out.put(words.get(a) + " and " + words.get(b), overlap(pa, pb));
            }
        }
        return out;
    }

    /** A line per token: its mean, and its means on the left and right halves; then the padding's, summed. */
    public String table() {
        StringBuilder out = new StringBuilder(String.format(Locale.ROOT, "%-4s %-16s %8s %8s %8s%n", "pos", "token", "mean", "left", "right"));
        for (int t = 0; t < tokens.size(); t++) row(out, Integer.toString(t), tokens.get(t), maps.get(t));
        if (paddingPositions > 0) row(out, tokens.size() + "-", "padding (" + paddingPositions + ")", padding);
        return out.toString();
    }

    private void row(StringBuilder out, String position, String token, float[] map) {
        out.append(String.format(Locale.ROOT, "%-4s %-16s %8.4f %8s %8s%n", position, token, meanOver(map, 0, width),
                half(map, 0, width / 2), half(map, width - width / 2, width)));
    }

    /** A half's mean, or "-" where a map one column wide has no halves. */
    private String half(float[] map, int fromColumn, int toColumn) {
        return width < 2 ? "-" : String.format(Locale.ROOT, "%.4f", meanOver(map, fromColumn, toColumn));
    }

    /**
     * The picture, then each token's map on one colour scale (black 0, through red and yellow, to white at the largest
     * value of any token but BOS, which takes most of the attention and would leave the words dark); each column
     * labelled with its token.
     */
    public BufferedImage image(BufferedImage picture, int cell) {
        double top = 1e-12;
        for (int t = 1; t < maps.size(); t++) for (float v : maps.get(t)) top = Math.max(top, v);
        List<BufferedImage> row = new ArrayList<>();
        List<String> labels = new ArrayList<>();
        row.add(picture);
        labels.add("picture");
        for (int t = 0; t < maps.size(); t++) {
            row.add(heat(maps.get(t), top));
            labels.add(tokens.get(t));
        }
        return ImageGrid.of(List.of(row), List.of(""), labels, cell);
    }

    private BufferedImage heat(float[] map, double top) {
        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                double v = Math.min(1, map[y * width + x] / top);
                int r = (int) Math.round(255 * Math.min(1, 3 * v)), g = (int) Math.round(255 * Math.min(1, Math.max(0, 3 * v - 1))),
                        b = (int) Math.round(255 * Math.max(0, 3 * v - 2));
                img.setRGB(x, y, (r << 16) | (g << 8) | b);
            }
        }
        return img;
    }
}
