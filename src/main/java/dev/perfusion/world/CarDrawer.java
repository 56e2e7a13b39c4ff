package dev.perfusion.world;

import static dev.perfusion.world.Painter.circle;
import static dev.perfusion.world.Painter.poly;

import java.awt.Color;
import java.awt.geom.Area;

/** Side-view car; variant 0 sedan, 1 van, 2 round beetle. */
final class CarDrawer implements ObjectDrawer {
    private static final Color HUB = new Color(185, 185, 190);

    @Override
    public void draw(Painter p) {
        Instance in = p.inst;
        double top = -0.55 * in.height();
        Area shell = new Area(Painter.rrect(-1, 0.02, 1, 0.72, 0.3));
        double[] window;
        switch (in.variant()) {
            case 1 -> {
                shell.add(new Area(Painter.rrect(-1, top - 0.05, 0.45, 0.2, 0.25)));
                shell.add(new Area(poly(0.3, top - 0.05, 0.45, top - 0.05, 0.75, 0.1, 0.3, 0.1)));
                window = new double[] {-0.8, top + 0.1, 0.65, 0.02};
            }
            case 2 -> {
                shell.add(new Area(Painter.ellipse(-0.05, 0.1, 0.75, 0.1 - top + 0.05)));
                window = new double[] {-0.5, top + 0.12, 0.42, 0.02};
            }
            default -> {
                shell.add(new Area(poly(-0.62, 0.1, -0.38, top, 0.3, top, 0.6, 0.1)));
                window = new double[] {-0.5, top + 0.1, 0.45, 0.02};
            }
        }
        if (in.accessory() == Accessory.ROOF_BOX) {
            Accessories.roofBox(p, -0.45, 0.2, top);
        }
        p.body(shell, false);
        double wx0 = window[0];
        double wy0 = window[1];
        double wx1 = window[2];
        double wy1 = window[3];
        double mid = (wx0 + wx1) / 2;
        double slant = in.variant() == 1 ? 0.1 : 0.14;
        p.part(poly(wx0 + slant, wy0, mid - 0.04, wy0, mid - 0.04, wy1, wx0, wy1), Painter.WINDOW);
        p.part(poly(mid + 0.04, wy0, wx1 - slant, wy0, wx1, wy1, mid + 0.04, wy1), Painter.WINDOW);
        p.line(mid, 0.1, mid, 0.6, Math.max(0.03, 0.6 * p.px), p.dark);
        p.part(Painter.ellipse(0.93, 0.28, 0.07, 0.08), new Color(250, 230, 110));
        p.part(Painter.ellipse(-0.95, 0.28, 0.05, 0.08), new Color(220, 40, 40));
        for (double x : new double[] {-0.55, 0.55}) {
            p.part(circle(x, 0.7, 0.28), Painter.INK);
            p.part(circle(x, 0.7, 0.12), HUB);
        }
        if (in.accessory() == Accessory.FLAG) {
            Accessories.flag(p, 0.1, top, 0.42);
        }
    }
}
