package dev.perfusion.eval;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** A small line-and-point chart: one series per method, drawn as a curve through its points in the given order. */
public final class Plot {
    public record Point(double x, double y, String label) {}

    private final String title, xLabel, yLabel;
    private final Map<String, List<Point>> series = new LinkedHashMap<>();
    private static final Color[] COLORS = {new Color(0xD62728), new Color(0x1F77B4), new Color(0x2CA02C), new Color(0xFF7F0E),
            new Color(0x9467BD), new Color(0x8C564B), new Color(0xE377C2), new Color(0x7F7F7F), new Color(0xBCBD22), new Color(0x17BECF)};

    public Plot(String title, String xLabel, String yLabel) {
        this.title = title;
        this.xLabel = xLabel;
        this.yLabel = yLabel;
    }

    public Plot add(String name, List<Point> points) {
        series.put(name, List.copyOf(points));
        return this;
    }

    public BufferedImage render(int width, int height) {
        double minX = Double.POSITIVE_INFINITY, maxX = Double.NEGATIVE_INFINITY, minY = minX, maxY = maxX;
        for (List<Point> ps : series.values()) {
            for (Point p : ps) {
                minX = Math.min(minX, p.x()); maxX = Math.max(maxX, p.x());
                minY = Math.min(minY, p.y()); maxY = Math.max(maxY, p.y());
            }
        }
        if (!Double.isFinite(minX)) { minX = 0; maxX = 1; minY = 0; maxY = 1; }
        double padX = Math.max(1e-3, (maxX - minX) * 0.08), padY = Math.max(1e-3, (maxY - minY) * 0.08);
        minX -= padX; maxX += padX; minY -= padY; maxY += padY;
        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, width, height);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
        Font legendFont = new Font(Font.SANS_SERIF, Font.PLAIN, 12);
        int legendWidth = series.keySet().stream().mapToInt(name -> g.getFontMetrics(legendFont).stringWidth(name)).max().orElse(0);
        int left = 70, right = Math.max(200, legendWidth + 45), top = 40, bottom = 50;
        int pw = width - left - right, ph = height - top - bottom;
        double stepX = niceStep(maxX - minX), stepY = niceStep(maxY - minY);
        for (double v = Math.ceil(minX / stepX) * stepX; v <= maxX; v += stepX) {
            int x = left + (int) Math.round((v - minX) / (maxX - minX) * pw);
            g.setColor(new Color(0xE5E5E5));
            g.drawLine(x, top, x, top + ph);
            g.setColor(Color.DARK_GRAY);
            String text = tick(v, stepX);
            g.drawString(text, x - g.getFontMetrics().stringWidth(text) / 2, top + ph + 15);
        }
        for (double v = Math.ceil(minY / stepY) * stepY; v <= maxY; v += stepY) {
            int y = top + ph - (int) Math.round((v - minY) / (maxY - minY) * ph);
            g.setColor(new Color(0xE5E5E5));
            g.drawLine(left, y, left + pw, y);
            g.setColor(Color.DARK_GRAY);
            String text = tick(v, stepY);
            g.drawString(text, left - 6 - g.getFontMetrics().stringWidth(text), y + 4);
        }
        g.setColor(Color.BLACK);
        g.drawRect(left, top, pw, ph);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 14));
        g.drawString(title, left, 24);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        g.drawString(xLabel, left + pw / 2 - 60, height - 12);
        Graphics2D rotated = (Graphics2D) g.create();
        rotated.rotate(-Math.PI / 2);
        rotated.drawString(yLabel, -(top + ph / 2 + 60), 16);
        rotated.dispose();
        int k = 0, legendY = top + 10;
        for (Map.Entry<String, List<Point>> e : series.entrySet()) {
            Color c = COLORS[k++ % COLORS.length];
            g.setColor(c);
            g.setStroke(new BasicStroke(2f));
            int[] prev = null;
            for (Point p : e.getValue()) {
                int x = left + (int) Math.round((p.x() - minX) / (maxX - minX) * pw);
                int y = top + ph - (int) Math.round((p.y() - minY) / (maxY - minY) * ph);
                if (prev != null) g.drawLine(prev[0], prev[1], x, y);
                g.fillOval(x - 4, y - 4, 8, 8);
                if (p.label() != null && !p.label().isEmpty()) {
                    g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 10));
                    g.drawString(p.label(), x + 5, y - 5);
                }
                prev = new int[] {x, y};
            }
            g.fillRect(left + pw + 15, legendY - 8, 10, 10);
            g.setColor(Color.BLACK);
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
            g.drawString(e.getKey(), left + pw + 30, legendY + 1);
            legendY += 18;
        }
        g.dispose();
        return img;
    }

    /** A 1, 2 or 5 times a power of ten that cuts the range into about five parts, so tick labels are round. */
    static double niceStep(double range) {
        double raw = range / 5, power = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / power;
        return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * power;
    }

    private static String tick(double value, double step) {
        int decimals = Math.max(0, (int) -Math.floor(Math.log10(step) + 1e-9));
        return String.format(Locale.ROOT, "%." + decimals + "f", Math.abs(value) < step * 1e-6 ? 0 : value);
    }
}
