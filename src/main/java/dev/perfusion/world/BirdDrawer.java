package dev.perfusion.world;

import static dev.perfusion.world.Painter.circle;
import static dev.perfusion.world.Painter.ellipse;
import static dev.perfusion.world.Painter.poly;

import java.awt.Color;

/** Side-view round bird: orange beak, dark wing, fan tail, thin legs. Variant sets the crest. */
final class BirdDrawer implements ObjectDrawer {
    private static final Color BEAK = new Color(245, 150, 30);

    @Override
    public void draw(Painter p) {
        Instance in = p.inst;
        double w = in.width();
        double hd = in.head();
        double lw = Math.max(0.05, 0.9 * p.px);
        for (double lx : new double[] {-0.12, 0.12}) {
            p.line(lx, 0.55, lx, 0.97, lw, BEAK);
            p.line(lx - 0.1, 0.97, lx + 0.12, 0.97, lw, BEAK);
        }
        p.part(poly(-0.4 * w, 0.05, -1.0, -0.22, -0.92, 0.1, -0.4 * w, 0.32), p.dark);
        double hx = 0.45;
        double hy = -0.38;
        double r = 0.33 * hd;
        if (in.variant() == 1) {
            p.part(poly(hx - 0.5 * r, hy - 0.7 * r, hx - 0.2 * r, hy - 1.5 * r, hx + 0.3 * r, hy - 0.8 * r), p.main);
        }
        p.body(ellipse(-0.05, 0.2, 0.58 * w, 0.42 * in.height()), false);
        p.body(circle(hx, hy, r), false);
        Color beak = in.color() == ColorWord.ORANGE ? new Color(250, 220, 60) : BEAK;
        p.part(poly(hx + 0.8 * r, hy - 0.35 * r, hx + 1.75 * r, hy + 0.05 * r, hx + 0.8 * r, hy + 0.35 * r), beak);
        p.part(Painter.rotated(ellipse(-0.15, 0.2, 0.36 * w, 0.2), -0.35, -0.15, 0.2), p.dark);
        p.flat(circle(hx + 0.3 * r, hy - 0.2 * r, Math.max(0.22 * r, 1.1 * p.px)), Color.WHITE);
        p.eye(hx + 0.36 * r, hy - 0.2 * r, 0.12 * r);
        switch (in.accessory()) {
            case BOW -> Accessories.bow(p, hx - 0.3 * r, hy - 0.9 * r, 0.17);
            case HAT -> Accessories.hat(p, hx - 0.1 * r, hy - 0.8 * r, 0.26 * hd);
            case SCARF -> Accessories.scarf(p, hx - 1.0 * r, hx + 0.6 * r, hy + 1.0 * r, 0.13);
            default -> { }
        }
    }
}
