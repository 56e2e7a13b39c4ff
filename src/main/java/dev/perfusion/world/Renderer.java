package dev.perfusion.world;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.geom.AffineTransform;
import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Rasterises labels at a given resolution. Each object is drawn on its own transparent layer whose alpha is that
 * object's soft mask, then composited over the scene.
 */
final class Renderer {
    record Result(BufferedImage image, BufferedImage background, List<float[]> masks, List<float[]> accessoryMasks) {}

    /** One object as drawn: its soft mask, and where its accessory changes the picture (null unless asked for). */
    private record Drawn(float[] mask, float[] accessoryMask) {}

    /** Keeps every object this far inside the image edges. */
    private static final double MARGIN = 0.015;
    /**
     * How far drawings reach beyond their [-1, 1] box, in box half-widths: snouts, whiskers and tails sideways,
     * hats, flags and stars above; rotation included.
     */
    private static final double REACH_X = 1.18;
    private static final double REACH_UP = 1.25;
    private static final double REACH_DOWN = 1.12;

    private final int size;
    private final boolean accessoryMasks;

    Renderer(int size, boolean accessoryMasks) {
        if (size < 16) {
            throw new IllegalArgumentException("image size too small: " + size);
        }
        this.size = size;
        this.accessoryMasks = accessoryMasks;
    }

    BufferedImage background(Scene scene, long seed) {
        BufferedImage bg = new BufferedImage(size, size, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = graphics(bg);
        g.scale(size, size);
        new ScenePainter(g, new SplittableRandom(seed)).paint(scene);
        g.dispose();
        return bg;
    }

    Result render(Labels labels, long backgroundSeed) {
        BufferedImage bg = background(labels.scene(), backgroundSeed);
        BufferedImage img = new BufferedImage(size, size, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = graphics(img);
        g.drawImage(bg, 0, 0, null);
        List<Drawn> drawn = new ArrayList<>();
        boolean pair = labels.spec().second() != null;
        drawn.add(drawObject(g, labels.spec().primary(), labels.primaryPose(), pair));
        if (pair) {
            drawn.add(drawObject(g, labels.spec().second(), labels.secondPose(), true));
        }
        g.dispose();
        return new Result(img, bg, drawn.stream().map(Drawn::mask).toList(),
                accessoryMasks ? drawn.stream().map(Drawn::accessoryMask).toList() : List.of());
    }

    private Drawn drawObject(Graphics2D g, Placed placed, Pose pose, boolean pair) {
        Placement where = placed.placement();
        // Each object of a pair keeps to its own half of the picture, so their masks never overlap.
        double lo = pair && where == Placement.RIGHT ? 0.5 + MARGIN / 3 : MARGIN;
        double hi = pair && where == Placement.LEFT ? 0.5 - MARGIN / 3 : 1 - MARGIN;
        double half = Math.min(placed.size().fraction() * pose.scale() / 2, (hi - lo) / (2 * REACH_X));
        // Sideways jitter only pushes outwards, away from the middle.
        double dx = where == Placement.LEFT ? -Math.abs(pose.dx())
                : where == Placement.RIGHT ? Math.abs(pose.dx()) : pose.dx();
        double cx = clamp(where.x() + dx, lo + REACH_X * half, hi - REACH_X * half);
        double cy = clamp(where.y() + pose.dy(), REACH_UP * half + MARGIN, 1 - REACH_DOWN * half - MARGIN);
        if (where != Placement.TOP) {
            // A contact shadow grounds the object; it belongs to the scene, not to the mask.
            g.setColor(new Color(0, 0, 0, 55));
            g.fill(Painter.ellipse(cx * size, (cy + 0.97 * half) * size, 0.8 * half * size, 0.12 * half * size));
        }
        AffineTransform t = new AffineTransform();
        t.translate(cx * size, cy * size);
        t.rotate(Math.toRadians(pose.angleDegrees()));
        t.scale((pose.mirrored() ? -1 : 1) * half * size, half * size);
        Instance instance = placed.instance();
        int[] layer = layer(instance, t, half, g);
        float[] mask = new float[size * size], accessoryMask = accessoryMasks ? new float[size * size] : null;
        for (int i = 0; i < mask.length; i++) {
            mask[i] = (layer[i] >>> 24) / 255f;
        }
        if (accessoryMasks && instance.accessory() != Accessory.NONE) {
            // the same object drawn again without its accessory: where the two differ is the accessory
            int[] without = layer(instance.withoutAccessory(), t, half, null);
            for (int i = 0; i < accessoryMask.length; i++) accessoryMask[i] = difference(layer[i], without[i]);
        }
        return new Drawn(mask, accessoryMask);
    }

    /** The object on its own transparent layer (ARGB pixels), composited onto {@code onto} when given. */
    private int[] layer(Instance instance, AffineTransform t, double half, Graphics2D onto) {
        BufferedImage layer = new BufferedImage(size, size, BufferedImage.TYPE_INT_ARGB);
        Graphics2D lg = graphics(layer);
        lg.transform(t);
        ObjectDrawer.of(instance.category()).draw(new Painter(lg, instance, 1 / (64 * half)));
        lg.dispose();
        if (onto != null) onto.drawImage(layer, 0, 0, null);
        return layer.getRGB(0, 0, size, size, null, 0, size);
    }

    /**
     * How much of a pixel the accessory covers, from the same pixel drawn with and without it: 1 where it changes a
     * channel by a quarter of its range or more (any accessory on any body does), in proportion below that (its
     * anti-aliased edge).
     */
    private static float difference(int p, int q) {
        int largest = 0;
        for (int shift = 0; shift < 32; shift += 8) largest = Math.max(largest, Math.abs(((p >>> shift) & 255) - ((q >>> shift) & 255)));
        return Math.min(1f, largest / 64f);
    }

    private static Graphics2D graphics(BufferedImage img) {
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setRenderingHint(RenderingHints.KEY_RENDERING, RenderingHints.VALUE_RENDER_QUALITY);
        g.setRenderingHint(RenderingHints.KEY_STROKE_CONTROL, RenderingHints.VALUE_STROKE_PURE);
        g.setRenderingHint(RenderingHints.KEY_COLOR_RENDERING, RenderingHints.VALUE_COLOR_RENDER_QUALITY);
        return g;
    }

    private static double clamp(double v, double lo, double hi) {
        return Math.max(lo, Math.min(hi, v));
    }
}
