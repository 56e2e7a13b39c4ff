package dev.perfusion.world;

import java.awt.Color;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/** The closed set of colour words; each owns a base RGB that drawn colours stay nearest to. */
public enum ColorWord {
    RED("red", 0xD22828),
    BLUE("blue", 0x2850D2),
    GREEN("green", 0x28A03C),
    YELLOW("yellow", 0xF0D228),
    ORANGE("orange", 0xF08220),
    PURPLE("purple", 0x8A3CB4),
    PINK("pink", 0xF08CBE),
    BROWN("brown", 0x825028),
    WHITE("white", 0xF0F0F0),
    BLACK("black", 0x1E1E1E),
    GREY("grey", 0x808080);

    /** Below this RGB distance two colour words read as "the same" on a 64x64 image. */
    private static final double SIMILAR = 130;
    private static final int JITTER = 14;

    private final String word;
    private final int rgb;

    ColorWord(String word, int rgb) {
        this.word = word;
        this.rgb = rgb;
    }

    public String word() {
        return word;
    }

    public int rgb() {
        return rgb;
    }

    public Color color() {
        return new Color(rgb);
    }

    /** A slightly varied shade that is still unambiguously this colour word (nearest base stays this). */
    public int jitter(SplittableRandom rng) {
        while (true) {
            int r = clamp(((rgb >> 16) & 255) + rng.nextInt(-JITTER, JITTER + 1));
            int g = clamp(((rgb >> 8) & 255) + rng.nextInt(-JITTER, JITTER + 1));
            int b = clamp((rgb & 255) + rng.nextInt(-JITTER, JITTER + 1));
            int c = (r << 16) | (g << 8) | b;
            if (nearest(c) == this) {
                return c;
            }
        }
    }

    public boolean similar(ColorWord other) {
        return distance(rgb, other.rgb) < SIMILAR;
    }

    /** Colours that contrast with this one, for patterns and accessories. */
    public List<ColorWord> contrasting() {
        return Arrays.stream(values()).filter(c -> !c.similar(this)).toList();
    }

    public static ColorWord nearest(int rgb) {
        ColorWord best = null;
        double bestD = Double.MAX_VALUE;
        for (ColorWord c : values()) {
            double d = distance(rgb, c.rgb);
            if (d < bestD) {
                bestD = d;
                best = c;
            }
        }
        return best;
    }

    public static ColorWord of(String word) {
        for (ColorWord c : values()) {
            if (c.word.equals(word)) {
                return c;
            }
        }
        throw new IllegalArgumentException("not a colour word: " + word);
    }

    static double distance(int a, int b) {
        int dr = ((a >> 16) & 255) - ((b >> 16) & 255);
        int dg = ((a >> 8) & 255) - ((b >> 8) & 255);
        int db = (a & 255) - (b & 255);
        return Math.sqrt(dr * dr + dg * dg + db * db);
    }

    private static int clamp(int v) {
        return Math.max(0, Math.min(255, v));
    }
}
