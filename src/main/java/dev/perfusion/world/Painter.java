package dev.perfusion.world;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.Shape;
import java.awt.geom.AffineTransform;
import java.awt.geom.Ellipse2D;
import java.awt.geom.Line2D;
import java.awt.geom.Path2D;
import java.awt.geom.Rectangle2D;
import java.awt.geom.RoundRectangle2D;
import java.util.SplittableRandom;

/**
 * Drawing toolkit for object drawers, in object-local coordinates: the object fills [-1, 1]^2, y down, and stands
 * on y = 1; side views face +x. Every part gets a dark outline so silhouettes stay bold against any scene.
 */
final class Painter {
    static final Color INK = new Color(25, 22, 20);
    static final Color WINDOW = new Color(150, 205, 240);
    static final Color TRUNK = new Color(110, 70, 35);

    final Graphics2D g;
    final Instance inst;
    /** Local units per pixel of a 64x64 image: keeps outlines and tiny features visible at any object size. */
    final double px;
    final Color main;
    final Color second;
    final Color light;
    final Color dark;
    final Color accessory;
    private final Color outline;
    private final BasicStroke outlineStroke;

    Painter(Graphics2D g, Instance inst, double px) {
        this.g = g;
        this.inst = inst;
        this.px = px;
        main = new Color(inst.rgb());
        second = new Color(inst.secondaryRgb());
        light = blend(main, Color.WHITE, 0.45);
        // Shading stays mild so that shaded parts still read as the main colour word.
        dark = blend(main, Color.BLACK, inst.color() == ColorWord.WHITE ? 0.08 : 0.15);
        accessory = new Color(inst.accessoryColor().jitter(new SplittableRandom(inst.seed())));
        // A black outline vanishes on a black object, so dark objects get a light rim instead.
        outline = inst.color() == ColorWord.BLACK ? new Color(165, 165, 165) : INK;
        // About a pixel at 64x64, but thinner on small objects so the outline does not swamp their colour.
        outlineStroke = round(Math.min(0.95 * px, 0.075));
    }

    /** Filled part with outline. */
    void part(Shape s, Color fill) {
        g.setColor(fill);
        g.fill(s);
        outline(s);
    }

    /** Main-colour part carrying the instance's pattern. */
    void body(Shape s, boolean verticalStripes) {
        g.setColor(main);
        g.fill(s);
        if (inst.pattern() != Pattern.PLAIN) {
            Shape clip = g.getClip();
            g.clip(s);
            paintPattern(s.getBounds2D(), verticalStripes);
            g.setClip(clip);
        }
        outline(s);
    }

    /** Filled without outline, for small details. */
    void flat(Shape s, Color fill) {
        g.setColor(fill);
        g.fill(s);
    }

    void outline(Shape s) {
        g.setColor(outline);
        g.setStroke(outlineStroke);
        g.draw(s);
    }

    /** A thick outlined stroke, for tails, handles and limbs. */
    void limb(Shape path, double width, Color c) {
        g.setColor(outline);
        g.setStroke(round(width + 1.9 * px));
        g.draw(path);
        g.setColor(c);
        g.setStroke(round(width));
        g.draw(path);
    }

    /** A plain line without outline. */
    void line(double x1, double y1, double x2, double y2, double width, Color c) {
        g.setColor(c);
        g.setStroke(round(width));
        g.draw(new Line2D.Double(x1, y1, x2, y2));
    }

    /** Dark eye dot never smaller than about a pixel. */
    void eye(double x, double y, double r) {
        flat(circle(x, y, Math.max(r, 0.75 * px)), INK);
    }

    private void paintPattern(Rectangle2D b, boolean vertical) {
        g.setColor(second);
        switch (inst.pattern()) {
            case STRIPES -> {
                // Broad, sparse stripes: about a quarter of the surface, few antialiased edges.
                double period = 0.42;
                for (double t = -1.2; t < 1.2; t += period) {
                    g.fill(vertical ? new Rectangle2D.Double(t, -1.2, 0.11, 2.4)
                            : new Rectangle2D.Double(-1.2, t, 2.4, 0.11));
                }
            }
            case SPOTS -> {
                double period = 0.36;
                int row = 0;
                for (double y = -1.1; y < 1.2; y += period, row++) {
                    for (double x = -1.1 + (row % 2) * period / 2; x < 1.2; x += period) {
                        g.fill(circle(x, y, 0.09));
                    }
                }
            }
            case CHECKS -> {
                double cell = 0.26;
                for (int i = 0; i < 10; i++) {
                    for (int j = 0; j < 10; j++) {
                        if ((i + j) % 2 == 0) {
                            g.fill(new Rectangle2D.Double(-1.2 + i * cell, -1.2 + j * cell, 0.16, 0.16));
                        }
                    }
                }
            }
            case PLAIN -> { }
        }
    }

    static BasicStroke round(double w) {
        return new BasicStroke((float) w, BasicStroke.CAP_ROUND, BasicStroke.JOIN_ROUND);
    }

    static Ellipse2D circle(double x, double y, double r) {
        return new Ellipse2D.Double(x - r, y - r, 2 * r, 2 * r);
    }

    static Ellipse2D ellipse(double x, double y, double rx, double ry) {
        return new Ellipse2D.Double(x - rx, y - ry, 2 * rx, 2 * ry);
    }

    static Shape rect(double x0, double y0, double x1, double y1) {
        return new Rectangle2D.Double(x0, y0, x1 - x0, y1 - y0);
    }

    static Shape rrect(double x0, double y0, double x1, double y1, double arc) {
        return new RoundRectangle2D.Double(x0, y0, x1 - x0, y1 - y0, arc, arc);
    }

    static Path2D poly(double... xy) {
        Path2D.Double p = new Path2D.Double();
        p.moveTo(xy[0], xy[1]);
        for (int i = 2; i < xy.length; i += 2) {
            p.lineTo(xy[i], xy[i + 1]);
        }
        p.closePath();
        return p;
    }

    static Path2D curve(double x0, double y0, double cx, double cy, double x1, double y1) {
        Path2D.Double p = new Path2D.Double();
        p.moveTo(x0, y0);
        p.quadTo(cx, cy, x1, y1);
        return p;
    }

    static Shape rotated(Shape s, double radians, double x, double y) {
        return AffineTransform.getRotateInstance(radians, x, y).createTransformedShape(s);
    }

    static Color blend(Color a, Color b, double t) {
        return new Color((int) Math.round(a.getRed() * (1 - t) + b.getRed() * t),
                (int) Math.round(a.getGreen() * (1 - t) + b.getGreen() * t),
                (int) Math.round(a.getBlue() * (1 - t) + b.getBlue() * t));
    }
}
