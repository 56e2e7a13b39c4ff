package dev.perfusion.world;

import static dev.perfusion.world.Painter.circle;
import static dev.perfusion.world.Painter.ellipse;
import static dev.perfusion.world.Painter.rect;

import java.awt.Color;
import java.awt.GradientPaint;
import java.awt.Graphics2D;
import java.awt.Shape;
import java.awt.geom.Area;
import java.awt.geom.Line2D;
import java.awt.geom.Path2D;
import java.util.SplittableRandom;

/**
 * Paints backgrounds in image-fraction coordinates ([0, 1]^2, y down). Each scene has a signature that survives
 * 64x64: colour bands plus one or two landmarks (sun, moon and stars, flakes, wall and floor, buildings...).
 */
final class ScenePainter {
    private static final double PX = 1.0 / 64;

    private final Graphics2D g;
    private final SplittableRandom rng;

    ScenePainter(Graphics2D g, SplittableRandom rng) {
        this.g = g;
        this.rng = rng;
    }

    void paint(Scene scene) {
        switch (scene) {
            case BEACH -> beach();
            case SNOW -> snow();
            case GRASS -> grass();
            case NIGHT -> night();
            case ROOM -> room();
            case DESERT -> desert();
            case FOREST -> forest();
            case CITY -> city();
        }
    }

    private void beach() {
        double sea = 0.4 + jitter(0.04);
        double sand = sea + 0.14;
        sky(new Color(90, 170, 240), new Color(175, 220, 250), sea);
        fill(circle(pick(0.15, 0.85) + jitter(0.05), 0.12, 0.07), new Color(255, 225, 60));
        fill(rect(0, sea, 1, sand), shade(new Color(30, 100, 185)));
        for (int i = 0; i < 3; i++) {
            double y = sea + 0.03 + i * 0.04;
            double x = rng.nextDouble(0.0, 0.7);
            line(x, y, x + 0.2, y, new Color(225, 240, 255));
        }
        fill(rect(0, sand, 1, 1), shade(new Color(238, 210, 145)));
        Path2D wet = new Path2D.Double();
        wet.moveTo(0, sand);
        wet.quadTo(0.5, sand + 0.06 + jitter(0.02), 1, sand);
        wet.closePath();
        fill(wet, new Color(210, 185, 130));
        dots(12, sand + 0.05, 1, new Color(205, 170, 105), 0.008);
    }

    private void snow() {
        double ground = 0.5 + jitter(0.04);
        sky(new Color(120, 140, 175), new Color(175, 190, 210), ground);
        Path2D hills = new Path2D.Double();
        hills.moveTo(0, ground);
        hills.quadTo(0.25, ground - 0.12 + jitter(0.03), 0.5, ground - 0.02);
        hills.quadTo(0.75, ground - 0.15 + jitter(0.03), 1, ground - 0.03);
        hills.lineTo(1, 1);
        hills.lineTo(0, 1);
        hills.closePath();
        fill(hills, new Color(222, 230, 242));
        fill(rect(0, ground + 0.08, 1, 1), new Color(246, 248, 252));
        line(0, ground + 0.08, 1, ground + 0.08, new Color(200, 212, 230));
        for (int i = 0; i < 28; i++) {
            fill(circle(rng.nextDouble(), rng.nextDouble(0, ground + 0.05), rng.nextDouble(0.6, 1.2) * PX),
                    Color.WHITE);
        }
        dots(10, ground + 0.1, 1, new Color(205, 215, 235), 0.01);
    }

    private void grass() {
        double ground = 0.48 + jitter(0.04);
        sky(new Color(95, 175, 245), new Color(175, 215, 250), ground);
        for (int i = 0; i < 2; i++) {
            cloud(rng.nextDouble(0.1, 0.9), rng.nextDouble(0.08, ground - 0.15));
        }
        fill(rect(0, ground, 1, 1), shade(new Color(95, 175, 70)));
        fill(rect(0, ground, 1, ground + 0.04), new Color(75, 150, 55));
        for (int i = 0; i < 40; i++) {
            double x = rng.nextDouble();
            double y = rng.nextDouble(ground + 0.06, 1.0);
            line(x, y, x + jitter(0.015), y - 0.035, new Color(55, 125, 45));
        }
    }

    private void night() {
        double ground = 0.75 + jitter(0.04);
        sky(new Color(8, 12, 40), new Color(35, 45, 100), ground);
        for (int i = 0; i < 30; i++) {
            double r = rng.nextDouble(0.5, 1.1) * PX;
            fill(circle(rng.nextDouble(), rng.nextDouble(0, ground - 0.05), r), new Color(250, 245, 210));
        }
        double mx = pick(0.15, 0.85) + jitter(0.04);
        Area moon = new Area(circle(mx, 0.14, 0.08));
        moon.subtract(new Area(circle(mx + 0.04, 0.11, 0.07)));
        fill(moon, new Color(250, 240, 170));
        Path2D hill = new Path2D.Double();
        hill.moveTo(0, ground);
        hill.quadTo(0.5, ground - 0.08 + jitter(0.03), 1, ground + jitter(0.03));
        hill.lineTo(1, 1);
        hill.lineTo(0, 1);
        hill.closePath();
        fill(hill, new Color(20, 42, 38));
    }

    private void room() {
        double floor = 0.62 + jitter(0.04);
        Color[] walls = {new Color(232, 215, 180), new Color(200, 220, 205), new Color(205, 210, 230),
            new Color(235, 200, 190)};
        Color wall = shade(walls[rng.nextInt(walls.length)]);
        fill(rect(0, 0, 1, floor), wall);
        Color stripe = Painter.blend(wall, Color.BLACK, 0.07);
        for (double x = 0.05; x < 1; x += 0.12) {
            fill(rect(x, 0, x + 0.05, floor), stripe);
        }
        double fx = pick(0.12, 0.62) + jitter(0.04);
        fill(rect(fx, 0.1, fx + 0.26, 0.34), new Color(120, 80, 45));
        fill(rect(fx + 0.025, 0.125, fx + 0.235, 0.315), new Color(150, 200, 235));
        fill(rect(0, floor - 0.03, 1, floor), new Color(245, 245, 240));
        fill(rect(0, floor, 1, 1), shade(new Color(165, 112, 65)));
        for (double y = floor + 0.07; y < 1; y += 0.09) {
            line(0, y, 1, y, new Color(125, 82, 45));
        }
    }

    private void desert() {
        double ground = 0.5 + jitter(0.04);
        sky(new Color(120, 185, 235), new Color(245, 215, 165), ground);
        fill(circle(pick(0.15, 0.85) + jitter(0.05), 0.13, 0.09), new Color(255, 245, 200));
        fill(rect(0, ground, 1, 1), shade(new Color(230, 180, 105)));
        for (int i = 0; i < 2; i++) {
            Path2D dune = new Path2D.Double();
            double y = ground + 0.1 + i * 0.18;
            dune.moveTo(0, y + jitter(0.03));
            dune.quadTo(rng.nextDouble(0.2, 0.8), y - 0.12, 1, y + jitter(0.03));
            dune.lineTo(1, 1);
            dune.lineTo(0, 1);
            dune.closePath();
            fill(dune, i == 0 ? new Color(215, 160, 90) : new Color(235, 190, 115));
        }
        double cx = pick(0.08, 0.92);
        Color cactus = new Color(60, 130, 70);
        fill(Painter.rrect(cx - 0.02, ground - 0.14, cx + 0.02, ground + 0.04, 0.03), cactus);
        fill(Painter.rrect(cx - 0.06, ground - 0.1, cx - 0.03, ground - 0.02, 0.03), cactus);
        fill(Painter.rrect(cx + 0.03, ground - 0.12, cx + 0.06, ground - 0.04, 0.03), cactus);
    }

    private void forest() {
        double ground = 0.7 + jitter(0.04);
        sky(new Color(150, 200, 170), new Color(60, 110, 70), ground);
        for (int i = 0; i < 7; i++) {
            double x = i / 6.0 + jitter(0.05);
            fill(rect(x - 0.035, 0.2, x + 0.035, ground + 0.02), new Color(85, 58, 35));
        }
        for (int i = 0; i < 12; i++) {
            fill(circle(rng.nextDouble(-0.05, 1.05), rng.nextDouble(0, 0.3), rng.nextDouble(0.08, 0.14)),
                    i % 2 == 0 ? new Color(30, 85, 40) : new Color(45, 110, 50));
        }
        fill(rect(0, ground, 1, 1), shade(new Color(75, 95, 40)));
        dots(14, ground + 0.03, 1, new Color(150, 95, 40), 0.012);
    }

    private void city() {
        double street = 0.72 + jitter(0.03);
        sky(new Color(150, 185, 225), new Color(215, 225, 235), street);
        double x = -rng.nextDouble(0.1);
        while (x < 1) {
            double w = rng.nextDouble(0.13, 0.22);
            double h = rng.nextDouble(0.3, 0.6);
            int grey = rng.nextInt(95, 150);
            Color wall = new Color(grey, grey, grey + 12);
            fill(rect(x, street - h, x + w, street), wall);
            Color lit = rng.nextBoolean() ? new Color(250, 230, 140) : new Color(185, 215, 240);
            for (double wy = street - h + 0.04; wy < street - 0.06; wy += 0.08) {
                for (double wx = x + 0.025; wx < x + w - 0.04; wx += 0.06) {
                    fill(rect(wx, wy, wx + 0.03, wy + 0.04), lit);
                }
            }
            x += w + 0.01;
        }
        fill(rect(0, street, 1, street + 0.05), new Color(175, 175, 170));
        fill(rect(0, street + 0.05, 1, 1), new Color(70, 70, 78));
        double lane = (street + 0.05 + 1) / 2;
        for (double lx = rng.nextDouble(0.1); lx < 1; lx += 0.2) {
            fill(rect(lx, lane - 0.01, lx + 0.1, lane + 0.01), new Color(240, 240, 240));
        }
    }

    private void sky(Color top, Color horizon, double bottom) {
        g.setPaint(new GradientPaint(0f, 0f, shade(top), 0f, (float) bottom, shade(horizon)));
        g.fill(rect(0, 0, 1, bottom + 0.01));
    }

    private void cloud(double x, double y) {
        Area c = new Area(ellipse(x, y, 0.09, 0.035));
        c.add(new Area(circle(x - 0.03, y - 0.02, 0.035)));
        c.add(new Area(circle(x + 0.03, y - 0.025, 0.04)));
        fill(c, new Color(250, 250, 252));
    }

    private void dots(int n, double y0, double y1, Color c, double r) {
        for (int i = 0; i < n; i++) {
            fill(circle(rng.nextDouble(), rng.nextDouble(y0, y1), r), c);
        }
    }

    private void fill(Shape s, Color c) {
        g.setColor(c);
        g.fill(s);
    }

    private void line(double x0, double y0, double x1, double y1, Color c) {
        g.setColor(c);
        g.setStroke(Painter.round(0.9 * PX));
        g.draw(new Line2D.Double(x0, y0, x1, y1));
    }

    /** Small brightness variation so no two backgrounds are pixel-identical. */
    private Color shade(Color c) {
        double f = 1 + jitter(0.06);
        return new Color(clamp(c.getRed() * f), clamp(c.getGreen() * f), clamp(c.getBlue() * f));
    }

    private double jitter(double a) {
        return rng.nextDouble(-a, a);
    }

    private double pick(double a, double b) {
        return rng.nextBoolean() ? a : b;
    }

    private static int clamp(double v) {
        return (int) Math.max(0, Math.min(255, Math.round(v)));
    }
}
