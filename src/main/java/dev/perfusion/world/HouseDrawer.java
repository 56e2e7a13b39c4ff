package dev.perfusion.world;

import static dev.perfusion.world.Painter.poly;
import static dev.perfusion.world.Painter.rect;

import java.awt.Color;

/** Front view house: walls in the main colour, a roof in the darkened secondary colour. */
final class HouseDrawer implements ObjectDrawer {
    private static final Color DOOR = new Color(120, 75, 40);

    @Override
    public void draw(Painter p) {
        Instance in = p.inst;
        double w = 0.68 * in.width();
        double eave = -0.22 - 0.1 * (1 - in.height());
        double peak = -0.8;
        Color roof = Painter.blend(p.second, Color.BLACK, 0.25);
        if (in.variant() == 1) {
            p.part(rect(0.3 * w, peak + 0.05, 0.55 * w, eave - 0.2), Painter.blend(p.main, Color.BLACK, 0.4));
        }
        p.body(rect(-w, eave, w, 1.0), false);
        p.part(poly(-w - 0.12, eave + 0.02, 0, peak, w + 0.12, eave + 0.02), roof);
        if (in.variant() == 2) {
            p.part(Painter.circle(0, (eave + peak) / 2 + 0.05, 0.11), Painter.WINDOW);
        }
        Color door = in.color() == ColorWord.BROWN ? Painter.blend(DOOR, Color.BLACK, 0.4) : DOOR;
        double doorW = 0.14 * in.head();
        p.part(rect(-doorW, 0.5, doorW, 1.0), door);
        p.flat(Painter.circle(doorW * 0.55, 0.75, Math.max(0.03, 0.5 * p.px)), new Color(240, 200, 60));
        for (int s = -1; s <= 1; s += 2) {
            double cx = s * 0.62 * w;
            double cy = eave + 0.33;
            double half = 0.12;
            p.part(rect(cx - half, cy - half, cx + half, cy + half), Painter.WINDOW);
            double lw = Math.max(0.03, 0.6 * p.px);
            p.line(cx, cy - half, cx, cy + half, lw, Color.WHITE);
            p.line(cx - half, cy, cx + half, cy, lw, Color.WHITE);
        }
        switch (in.accessory()) {
            case FLAG -> Accessories.flag(p, 0, peak, 0.35);
            case HEART -> Accessories.heart(p, 0, 0.6, 0.09);
            default -> { }
        }
    }
}
