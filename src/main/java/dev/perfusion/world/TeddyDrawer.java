package dev.perfusion.world;

import static dev.perfusion.world.Painter.circle;
import static dev.perfusion.world.Painter.ellipse;

/** Front-facing teddy: round ears, big head, muzzle, fat limbs. Variant 1 patches an ear, 2 the tummy. */
final class TeddyDrawer implements ObjectDrawer {
    @Override
    public void draw(Painter p) {
        Instance in = p.inst;
        double w = in.width();
        double hd = in.head();
        // Legs and arms behind the body.
        for (int s = -1; s <= 1; s += 2) {
            p.body(ellipse(s * 0.33 * w, 0.8, 0.23, 0.19), false);
            p.part(ellipse(s * 0.36 * w, 0.86, 0.12, 0.09), p.light);
            p.body(Painter.rotated(ellipse(s * 0.56 * w, 0.28, 0.16, 0.3), -s * 0.5, s * 0.56 * w, 0.28), false);
        }
        p.body(ellipse(0, 0.38, 0.5 * w, 0.52), true);
        if (in.variant() == 2) {
            p.part(Painter.rrect(-0.2, 0.3, 0.12, 0.6, 0.08), p.second);
        } else {
            p.part(ellipse(0, 0.45, 0.22 * w, 0.25), p.light);
        }
        double hy = -0.42;
        double hr = 0.42 * hd;
        for (int s = -1; s <= 1; s += 2) {
            double ex = s * 0.78 * hr;
            double ey = hy - 0.8 * hr;
            p.body(circle(ex, ey, 0.38 * hr), false);
            boolean patched = in.variant() == 1 && s < 0;
            p.flat(circle(ex, ey, 0.2 * hr), patched ? p.second : p.light);
        }
        p.body(circle(0, hy, hr), false);
        p.part(ellipse(0, hy + 0.3 * hr, 0.4 * hr, 0.3 * hr), p.light);
        p.flat(ellipse(0, hy + 0.17 * hr, 0.17 * hr, 0.12 * hr), Painter.INK);
        p.eye(-0.38 * hr, hy - 0.18 * hr, 0.1 * hr);
        p.eye(0.38 * hr, hy - 0.18 * hr, 0.1 * hr);
        double neck = hy + hr * 0.95;
        switch (in.accessory()) {
            case BOW -> Accessories.bow(p, 0, neck, 0.22);
            case HAT -> Accessories.hat(p, 0, hy - 0.85 * hr, 0.32 * hd);
            case SCARF -> Accessories.scarf(p, -0.42 * w, 0.42 * w, neck, 0.14);
            case COLLAR -> Accessories.collar(p, -0.36 * w, 0.36 * w, neck, 0.09);
            default -> { }
        }
    }
}
