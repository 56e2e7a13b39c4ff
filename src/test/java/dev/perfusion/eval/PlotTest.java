package dev.perfusion.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.awt.image.BufferedImage;
import java.util.List;
import org.junit.jupiter.api.Test;

class PlotTest {
    @Test
    void ticksAreRoundNumbers() {
        assertEquals(500, Plot.niceStep(3000), 1e-9);
        assertEquals(0.02, Plot.niceStep(0.09), 1e-12);
        assertEquals(0.005, Plot.niceStep(0.03), 1e-12);
        assertEquals(1, Plot.niceStep(4), 1e-12);
    }

    @Test
    void rendersEverySeriesAtTheRequestedSize() {
        BufferedImage img = new Plot("t", "x", "y")
                .add("a", List.of(new Plot.Point(0, 0, "p"), new Plot.Point(1, 1, "")))
                .add("b", List.of(new Plot.Point(0.5, 0.2, "")))
                .render(320, 200);
        assertEquals(320, img.getWidth());
        assertEquals(200, img.getHeight());
        int red = 0;
        for (int y = 0; y < 200; y++) for (int x = 0; x < 320; x++) if (img.getRGB(x, y) == 0xFFD62728) red++;
        assertEquals(true, red > 20, "the first series is drawn in its colour");
    }
}
