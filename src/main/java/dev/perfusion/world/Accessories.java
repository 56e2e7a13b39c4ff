package dev.perfusion.world;

import static dev.perfusion.world.Painter.circle;
import static dev.perfusion.world.Painter.poly;
import static dev.perfusion.world.Painter.rect;
import static dev.perfusion.world.Painter.rrect;

import java.awt.Color;
import java.awt.geom.Path2D;

/** Accessory shapes, drawn in the accessory colour at anchors the category drawers choose. */
final class Accessories {
    private Accessories() {}

    static void bow(Painter p, double x, double y, double s) {
        p.part(poly(x, y, x - s, y - 0.6 * s, x - s, y + 0.6 * s), p.accessory);
        p.part(poly(x, y, x + s, y - 0.6 * s, x + s, y + 0.6 * s), p.accessory);
        p.part(circle(x, y, 0.3 * s), p.accessory);
    }

    /** Top hat whose brim rests at y. */
    static void hat(Painter p, double x, double y, double s) {
        Color band = p.inst.accessoryColor() == ColorWord.WHITE ? Painter.INK : Color.WHITE;
        p.part(rect(x - 0.6 * s, y - 1.15 * s, x + 0.6 * s, y), p.accessory);
        p.flat(rect(x - 0.6 * s, y - 0.4 * s, x + 0.6 * s, y - 0.2 * s), band);
        p.part(rrect(x - s, y - 0.14 * s, x + s, y + 0.1 * s, 0.1 * s), p.accessory);
    }

    /** Band across a neck from x0 to x1 with a hanging end. */
    static void scarf(Painter p, double x0, double x1, double y, double h) {
        double tx = x0 + 0.3 * (x1 - x0);
        p.part(poly(tx, y, tx + 0.5 * h, y, tx + 0.8 * h, y + 2.6 * h, tx + 0.05 * h, y + 2.5 * h), p.accessory);
        p.part(rrect(x0, y - h / 2, x1, y + h / 2, h * 0.8), p.accessory);
    }

    static void collar(Painter p, double x0, double x1, double y, double h) {
        p.part(rrect(x0, y - h / 2, x1, y + h / 2, h * 0.6), p.accessory);
        double tx = (x0 + x1) / 2;
        p.part(circle(tx, y + h * 0.9, h * 0.55), new Color(245, 200, 40));
    }

    /** Flag on a pole standing at (x, y), s tall. */
    static void flag(Painter p, double x, double y, double s) {
        p.line(x, y, x, y - s, Math.max(0.05, 1.0 * p.px), Painter.INK);
        p.part(poly(x, y - s, x + 0.6 * s, y - 0.8 * s, x, y - 0.6 * s), p.accessory);
    }

    static void heart(Painter p, double x, double y, double s) {
        Path2D.Double h = new Path2D.Double();
        h.moveTo(x, y + 0.9 * s);
        h.curveTo(x - 1.2 * s, y, x - 0.7 * s, y - 0.9 * s, x, y - 0.35 * s);
        h.curveTo(x + 0.7 * s, y - 0.9 * s, x + 1.2 * s, y, x, y + 0.9 * s);
        h.closePath();
        p.part(h, p.accessory);
    }

    static void star(Painter p, double x, double y, double s) {
        double[] xy = new double[20];
        for (int i = 0; i < 10; i++) {
            double r = i % 2 == 0 ? s : 0.45 * s;
            double a = -Math.PI / 2 + i * Math.PI / 5;
            xy[2 * i] = x + r * Math.cos(a);
            xy[2 * i + 1] = y + r * Math.sin(a);
        }
        p.part(poly(xy), p.accessory);
    }

    static void roofBox(Painter p, double x0, double x1, double y) {
        p.part(rect(x0 + 0.1, y - 0.05, x0 + 0.14, y), Painter.INK);
        p.part(rect(x1 - 0.14, y - 0.05, x1 - 0.1, y), Painter.INK);
        p.part(rrect(x0, y - 0.25, x1, y - 0.04, 0.12), p.accessory);
    }
}
