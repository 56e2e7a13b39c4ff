package dev.perfusion.io;

import org.junit.jupiter.api.Test;

import java.awt.Color;
import java.awt.image.BufferedImage;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ImageGridTest {
    private static BufferedImage red(int size) {
        BufferedImage img = new BufferedImage(size, size, BufferedImage.TYPE_INT_RGB);
        var g = img.createGraphics();
        g.setColor(Color.RED);
        g.fillRect(0, 0, size, size);
        g.dispose();
        return img;
    }

    @Test
    void blankLabelsTakeNoRoom() {
        List<List<BufferedImage>> rows = List.of(List.of(red(8), red(8)), List.of(red(8)));
        BufferedImage bare = ImageGrid.of(rows, List.of("", " "), List.of(), 64);
        assertEquals(2 * 64, bare.getWidth());
        assertEquals(2 * 64, bare.getHeight());
        assertEquals(Color.RED.getRGB(), bare.getRGB(0, 0), "the first picture starts at the corner");
    }

    /** A 768x512 picture's cell is 3:2 too, not squashed square (a sweep of wide pictures said "Size: 768x512" under square ones). */
    @Test
    void cellsKeepThePicturesShape() {
        BufferedImage wide = new BufferedImage(768, 512, BufferedImage.TYPE_INT_RGB);
        BufferedImage grid = ImageGrid.of(List.of(List.of(wide, wide), List.of(wide)), List.of(), List.of(), 96);
        assertEquals(2 * 96, grid.getWidth());
        assertEquals(2 * 64, grid.getHeight());
    }

    @Test
    void labelsGetTheirColumnAndHeader() {
        List<List<BufferedImage>> rows = List.of(List.of(red(8), red(8)));
        BufferedImage labelled = ImageGrid.of(rows, List.of("a red car\non the beach"), List.of("beta 0.5", "beta 0.7"), 64, 200);
        assertEquals(200 + 2 * 64, labelled.getWidth());
        assertEquals(24 + 64, labelled.getHeight());
        assertEquals(Color.RED.getRGB(), labelled.getRGB(200, 24));
        boolean secondLineDrawn = false;
        for (int x = 0; x < 200 && !secondLineDrawn; x++) {
            for (int y = 24 + 18; y < 24 + 30; y++) secondLineDrawn |= labelled.getRGB(x, y) != Color.WHITE.getRGB();
        }
        assertTrue(secondLineDrawn, "a line break starts a second line of the label");
    }
}
