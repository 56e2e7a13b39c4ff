package dev.perfusion.world;

import static dev.perfusion.world.Painter.circle;
import static dev.perfusion.world.Painter.ellipse;

import java.awt.Color;

/** Side-view dog: long snout with a black nose, floppy ear, long legs, short raised tail. */
final class DogDrawer implements ObjectDrawer {
    private static final Color TONGUE = new Color(230, 90, 110);

    @Override
    public void draw(Painter p) {
        Instance in = p.inst;
        double w = in.width();
        double hd = in.head();
        p.limb(Painter.curve(-0.58 * w, 0.08, -0.75, 0.0, -0.88, -0.3), 0.09, p.main);
        double[] legs = {-0.5 * w, -0.32 * w, 0.28 * w, 0.46 * w};
        for (int i = 0; i < legs.length; i++) {
            Color c = i % 2 == 0 ? p.dark : p.main;
            p.part(Painter.rrect(legs[i] - 0.08, 0.25, legs[i] + 0.08, 1.0, 0.1), c);
        }
        p.body(ellipse(-0.05, 0.18, 0.62 * w, 0.27 * in.height()), true);
        double hx = 0.42;
        double hy = -0.38;
        double r = 0.33 * hd;
        // Neck joins head and body so the silhouette is one animal.
        p.part(Painter.rotated(Painter.rrect(hx - 0.22, hy, hx + 0.08, 0.25, 0.1), -0.35, hx, hy), p.main);
        if (in.variant() == 2) {
            p.part(Painter.rrect(hx + 0.7 * r, hy + 0.4 * r, hx + 1.2 * r, hy + 1.1 * r, 0.12), TONGUE);
        }
        p.body(Painter.rrect(hx + 0.1 * r, hy - 0.05 * r, hx + 1.75 * r, hy + 0.65 * r, 0.35 * r), false);
        p.body(circle(hx, hy, r), false);
        if (in.variant() == 1) {
            p.flat(circle(hx + 0.3 * r, hy - 0.3 * r, 0.35 * r), p.second);
        }
        p.flat(circle(hx + 1.62 * r, hy + 0.1 * r, Math.max(0.22 * r, p.px)), Painter.INK);
        p.eye(hx + 0.32 * r, hy - 0.3 * r, 0.12 * r);
        Color ear = in.color() == ColorWord.BLACK ? p.light : p.dark;
        p.part(Painter.rotated(ellipse(hx - 0.5 * r, hy + 0.3 * r, 0.27 * r, 0.65 * r), 0.3, hx - 0.5 * r,
                hy - 0.3 * r), ear);
        double neckY = hy + 1.1 * r;
        switch (in.accessory()) {
            case BOW -> Accessories.bow(p, hx - 0.2 * r, hy - 1.0 * r, 0.18);
            case HAT -> Accessories.hat(p, hx, hy - 0.85 * r, 0.26 * hd);
            case SCARF -> Accessories.scarf(p, hx - 1.0 * r, hx + 0.45 * r, neckY, 0.13);
            case COLLAR -> Accessories.collar(p, hx - 1.0 * r, hx + 0.45 * r, neckY, 0.09);
            default -> { }
        }
    }
}
