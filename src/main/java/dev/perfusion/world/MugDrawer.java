package dev.perfusion.world;

import static dev.perfusion.world.Painter.ellipse;

import java.awt.Color;
import java.awt.geom.Area;

/** Mug: cylinder with a ring handle on the right and a dark drink at the rim; variant 1 steams. */
final class MugDrawer implements ObjectDrawer {
    private static final Color DRINK = new Color(90, 50, 25);
    private static final Color STEAM = new Color(235, 235, 235);

    @Override
    public void draw(Painter p) {
        Instance in = p.inst;
        double x0 = -0.75 * in.width();
        double x1 = 0.45 * in.width();
        double top = -0.55 + 0.3 * (1 - in.height());
        double cx = (x0 + x1) / 2;
        double rx = (x1 - x0) / 2;
        p.limb(ellipse(x1 + 0.05, 0.2, 0.33, 0.36), 0.15, p.main);
        Area body = new Area(Painter.rect(x0, top, x1, 0.9));
        body.add(new Area(ellipse(cx, 0.9, rx, 0.1)));
        body.add(new Area(ellipse(cx, top, rx, 0.11)));
        p.body(body, false);
        p.part(ellipse(cx, top, rx * 0.85, 0.07), DRINK);
        switch (in.accessory()) {
            case HEART -> Accessories.heart(p, cx, 0.25, 0.25);
            case STAR -> Accessories.star(p, cx, 0.25, 0.27);
            default -> { }
        }
        if (in.variant() == 1) {
            for (double sx : new double[] {cx - 0.2, cx + 0.15}) {
                p.line(sx, top - 0.15, sx + 0.08, top - 0.4, Math.max(0.05, 0.9 * p.px), STEAM);
                p.line(sx + 0.08, top - 0.4, sx - 0.02, top - 0.6, Math.max(0.05, 0.9 * p.px), STEAM);
            }
        }
    }
}
