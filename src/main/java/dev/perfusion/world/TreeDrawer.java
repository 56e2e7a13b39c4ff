package dev.perfusion.world;

import static dev.perfusion.world.Painter.circle;
import static dev.perfusion.world.Painter.poly;

import java.awt.Shape;
import java.awt.geom.Area;

/** Tree: brown trunk, foliage in the main colour; variant 0 round, 1 pine, 2 tall oval. Spots are fruit. */
final class TreeDrawer implements ObjectDrawer {
    @Override
    public void draw(Painter p) {
        Instance in = p.inst;
        double w = in.width();
        p.part(poly(-0.13, 0.25, 0.13, 0.25, 0.18, 1.0, -0.18, 1.0), Painter.TRUNK);
        Area crown = new Area();
        double top;
        switch (in.variant()) {
            case 1 -> {
                top = -1.0;
                for (int i = 0; i < 3; i++) {
                    double y0 = -1.0 + i * 0.4;
                    double half = (0.45 + 0.2 * i) * w;
                    crown.add(new Area(poly(0, y0, half, y0 + 0.65, -half, y0 + 0.65)));
                }
            }
            case 2 -> {
                top = -0.98;
                crown.add(new Area(Painter.ellipse(0, -0.2, 0.52 * w, 0.78)));
            }
            default -> {
                top = -0.92;
                crown.add(new Area(circle(0, -0.42, 0.5 * w)));
                crown.add(new Area(circle(-0.45 * w, -0.05, 0.42 * w)));
                crown.add(new Area(circle(0.45 * w, -0.05, 0.42 * w)));
                crown.add(new Area(circle(0, 0.05, 0.45 * w)));
            }
        }
        p.part(crown, p.main);
        if (in.pattern() == Pattern.SPOTS) {
            fruit(p, crown);
        }
        switch (in.accessory()) {
            case STAR -> Accessories.star(p, 0, top, 0.2);
            case BOW -> Accessories.bow(p, 0, 0.55, 0.17);
            default -> { }
        }
    }

    /** Fruit dots on a fixed grid inside the crown, so the same tree always bears the same fruit. */
    private static void fruit(Painter p, Shape crown) {
        int k = 0;
        for (double y = -0.7; y < 0.3; y += 0.3) {
            for (double x = -0.75; x < 0.8; x += 0.3) {
                double fx = x + ((k++ % 2) * 0.12);
                if (crown.contains(fx - 0.1, y - 0.1, 0.2, 0.2)) {
                    p.part(circle(fx, y, 0.08), p.second);
                }
            }
        }
    }
}
