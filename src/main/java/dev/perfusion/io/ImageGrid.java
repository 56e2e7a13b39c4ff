package dev.perfusion.io;

import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.util.List;

/**
 * A labelled grid of equally sized images, each drawn {@code cell} pixels wide in its own shape: rows (with a label on the left, wrapped, "\n" breaking a line) by columns
 * (with a label on top). Labels that are absent, empty or blank take no room.
 */
public final class ImageGrid {
    private ImageGrid() {}

    public static BufferedImage of(List<List<BufferedImage>> rows, List<String> rowLabels, List<String> columnLabels, int cell) {
        return of(rows, rowLabels, columnLabels, cell, Math.max(120, cell));
    }

    public static BufferedImage of(List<List<BufferedImage>> rows, List<String> rowLabels, List<String> columnLabels, int cell,
                                   int rowLabelWidth) {
        int labelWidth = anyText(rowLabels) ? rowLabelWidth : 0, header = anyText(columnLabels) ? 24 : 0;
        int columns = rows.stream().mapToInt(List::size).max().orElse(0);
        // cells keep the pictures' shape (768x512 was squashed square): cell wide, as tall as the first picture says
        BufferedImage first = rows.stream().flatMap(List::stream).findFirst().orElse(null);
        int cellHeight = first == null ? cell : Math.max(1, (int) Math.round((double) cell * first.getHeight() / first.getWidth()));
        BufferedImage out = new BufferedImage(labelWidth + columns * cell, header + rows.size() * cellHeight, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = out.createGraphics();
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, out.getWidth(), out.getHeight());
        g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_NEAREST_NEIGHBOR);
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        g.setColor(Color.BLACK);
        if (header > 0) {
            for (int c = 0; c < columnLabels.size(); c++) g.drawString(columnLabels.get(c), labelWidth + c * cell + 4, 16);
        }
        for (int r = 0; r < rows.size(); r++) {
            int y = header + r * cellHeight;
            if (labelWidth > 0) drawWrapped(g, rowLabels.get(r), 4, y + 14, labelWidth - 8);
            for (int c = 0; c < rows.get(r).size(); c++) g.drawImage(rows.get(r).get(c), labelWidth + c * cell, y, cell, cellHeight, null);
        }
        g.dispose();
        return out;
    }

    private static boolean anyText(List<String> labels) {
        return labels != null && labels.stream().anyMatch(l -> l != null && !l.isBlank());
    }

    private static void drawWrapped(Graphics2D g, String text, int x, int y, int width) {
        for (String paragraph : text.split("\n")) {
            StringBuilder line = new StringBuilder();
            for (String word : paragraph.split(" ")) {
                if (line.length() > 0 && g.getFontMetrics().stringWidth(line + " " + word) > width) {
                    g.drawString(line.toString(), x, y);
                    y += 14;
                    line.setLength(0);
                }
                if (line.length() > 0) line.append(' ');
                line.append(word);
            }
            g.drawString(line.toString(), x, y);
            y += 14;
        }
    }
}
