package dev.perfusion.world;

import static dev.perfusion.world.Painter.circle;
import static dev.perfusion.world.Painter.ellipse;
import static dev.perfusion.world.Painter.poly;

import java.awt.Color;

/** Side-view cat: pointed ears, whiskers, short legs and a tail curling up. Variant sets the tail curl. */
final class CatDrawer implements ObjectDrawer {
    private static final Color NOSE = new Color(235, 120, 150);

    @Override
    public void draw(Painter p) {
        Instance in = p.inst;
        double w = in.width();
        double hd = in.head();
        double tailTip = -0.55 - 0.2 * in.variant();
        p.limb(Painter.curve(-0.6 * w, 0.35, -1.1, 0.3, -0.9, tailTip), 0.15, p.main);
        double[] legs = {-0.45 * w, -0.27 * w, 0.2 * w, 0.38 * w};
        for (int i = 0; i < legs.length; i++) {
            Color c = i % 2 == 0 ? p.dark : p.main;
            p.part(Painter.rrect(legs[i] - 0.085, 0.55, legs[i] + 0.085, 1.0, 0.12), c);
        }
        p.body(ellipse(-0.08, 0.42, 0.62 * w, 0.32 * in.height()), true);
        double hx = 0.5;
        double hy = 0.0;
        double r = 0.37 * hd;
        p.part(poly(hx - 0.85 * r, hy - 0.35 * r, hx - 0.7 * r, hy - 1.45 * r, hx - 0.05 * r, hy - 0.8 * r), p.main);
        p.part(poly(hx + 0.05 * r, hy - 0.85 * r, hx + 0.75 * r, hy - 1.45 * r, hx + 0.9 * r, hy - 0.35 * r), p.main);
        p.body(circle(hx, hy, r), true);
        p.flat(poly(hx - 0.68 * r, hy - 0.6 * r, hx - 0.62 * r, hy - 1.15 * r, hx - 0.3 * r, hy - 0.8 * r), NOSE);
        p.flat(poly(hx + 0.3 * r, hy - 0.85 * r, hx + 0.62 * r, hy - 1.15 * r, hx + 0.7 * r, hy - 0.6 * r), NOSE);
        // Eyes, nose and whiskers: the face looks right (+x), three-quarter view.
        Color iris = in.color() == ColorWord.GREEN ? new Color(240, 210, 40) : new Color(120, 200, 60);
        for (double ex : new double[] {hx + 0.05 * r, hx + 0.55 * r}) {
            p.flat(ellipse(ex, hy - 0.1 * r, 0.17 * r, 0.2 * r), iris);
            p.flat(ellipse(ex, hy - 0.1 * r, Math.max(0.05 * r, 0.4 * p.px), 0.17 * r), Painter.INK);
        }
        p.flat(poly(hx + 0.2 * r, hy + 0.25 * r, hx + 0.42 * r, hy + 0.25 * r, hx + 0.31 * r, hy + 0.4 * r), NOSE);
        Color whisker = in.color() == ColorWord.WHITE ? Painter.INK : Color.WHITE;
        double ww = Math.max(0.025, 0.5 * p.px);
        for (int k = -1; k <= 1; k++) {
            p.line(hx + 0.55 * r, hy + 0.4 * r, hx + 1.55 * r, hy + 0.3 * r + k * 0.25 * r, ww, whisker);
        }
        double neckY = hy + 0.95 * r;
        switch (in.accessory()) {
            case BOW -> Accessories.bow(p, hx - 0.5 * r, hy - 0.95 * r, 0.18);
            case HAT -> Accessories.hat(p, hx, hy - 0.8 * r, 0.27 * hd);
            case SCARF -> Accessories.scarf(p, hx - 0.9 * r, hx + 0.6 * r, neckY, 0.13);
            case COLLAR -> Accessories.collar(p, hx - 0.9 * r, hx + 0.6 * r, neckY, 0.08);
            default -> { }
        }
    }
}
