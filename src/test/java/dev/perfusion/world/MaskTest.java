package dev.perfusion.world;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class MaskTest {
    private static final int N = 400;
    private final WorldGenerator world = new WorldGenerator();

    @Test
    void masksAreNonEmptyAndInsideTheImage() {
        for (long seed = 0; seed < N; seed++) {
            Sample s = world.sample(seed);
            int n = s.size();
            assertEquals(s.labels().second().isPresent() ? 2 : 1, s.masks().size());
            for (float[] m : s.masks()) {
                assertEquals(n * n, m.length);
                double area = 0;
                for (float v : m) {
                    assertTrue(v >= 0 && v <= 1);
                    area += v;
                }
                // Even a small object covers a few dozen pixels; a large one never fills the frame.
                assertTrue(area > 40 && area < 0.7 * n * n, "area " + area + " for seed " + seed);
                // The object stays inside: border pixels are (nearly) empty.
                for (int i = 0; i < n; i++) {
                    assertTrue(m[i] < 0.5 && m[(n - 1) * n + i] < 0.5 && m[i * n] < 0.5 && m[i * n + n - 1] < 0.5,
                            "object touches the border, seed " + seed);
                }
            }
            if (s.masks().size() == 2) {
                float[] a = s.masks().get(0);
                float[] b = s.masks().get(1);
                for (int i = 0; i < a.length; i++) {
                    assertTrue(a[i] * b[i] < 0.05, "pair masks overlap, seed " + seed);
                }
            }
        }
    }

    /** The accessory's mask is where the object's accessory is drawn: inside the object, in the accessory's colour, a small part of it. */
    @Test
    void accessoryMasksCoverTheAccessoryAndNothingElse() {
        Instance withBow = Instance.of(Category.TEDDY, 5, ColorWord.BROWN, ColorWord.WHITE, Pattern.PLAIN, Accessory.BOW, ColorWord.BLUE, 0);
        WorldGenerator drawingAccessories = new WorldGenerator(64, true);
        assertEquals(List.of(), world.sample(7).accessoryMasks(), "none unless asked for");
        Sample s = drawingAccessories.render(SceneSpec.single(withBow, Scene.BEACH, Placement.CENTER, Size.LARGE), 3);
        float[] object = s.masks().get(0), bow = s.accessoryMasks().get(0);
        int[] img = DeterminismTest.pixels(s.image());
        double bowArea = 0, objectArea = 0;
        int solid = 0, blue = 0;
        for (int i = 0; i < bow.length; i++) {
            assertTrue(bow[i] >= 0 && bow[i] <= 1);
            bowArea += bow[i];
            objectArea += object[i];
            if (bow[i] > 0.05) assertTrue(object[i] > 0, "the bow is part of the object, pixel " + i);
            if (bow[i] == 1) {
                solid++;
                int r = (img[i] >> 16) & 255, g = (img[i] >> 8) & 255, b = img[i] & 255;
                if (b > r + 30) blue++;
                else assertTrue(r < 90 && g < 90 && b < 90, "a bow pixel is blue or its dark outline, pixel " + i + ": " + Integer.toHexString(img[i]));
            }
        }
        assertTrue(solid >= 4 && blue >= solid / 3, "the bow covers a few pixels, many of them blue: " + blue + " blue of " + solid);
        assertTrue(bowArea < 0.15 * objectArea, "the bow is a small part of the teddy: " + bowArea + " of " + objectArea);

        Sample plain = drawingAccessories.render(SceneSpec.single(withBow.withoutAccessory(), Scene.BEACH, Placement.CENTER, Size.LARGE), 3);
        for (float v : plain.accessoryMasks().get(0)) assertEquals(0f, v, "no accessory, no accessory mask");
        assertEquals(1, s.accessoryMasks().size());
    }

    @Test
    void objectPixelsDifferFromTheBackground() {
        for (long seed = 0; seed < N; seed++) {
            WorldGenerator.Rendered r = world.sampleWithBackground(seed);
            int[] img = DeterminismTest.pixels(r.sample().image());
            int[] bg = DeterminismTest.pixels(r.background());
            for (float[] m : r.sample().masks()) {
                double inside = 0;
                int count = 0;
                for (int i = 0; i < m.length; i++) {
                    if (m[i] > 0.99) {
                        inside += ColorWord.distance(img[i], bg[i]);
                        count++;
                    }
                }
                assertTrue(count > 0 && inside / count > 40, "object blends into scene, seed " + seed);
            }
            // Outside every mask the picture is the scene, at most darkened by a contact shadow.
            int changed = 0;
            for (int i = 0; i < img.length; i++) {
                float any = 0;
                for (float[] m : r.sample().masks()) {
                    any = Math.max(any, m[i]);
                }
                for (int shift = 0; shift < 24 && any == 0; shift += 8) {
                    int v = (img[i] >> shift) & 255;
                    int b = (bg[i] >> shift) & 255;
                    if (v > b + 1 || v < 0.75 * b - 2) {
                        changed++;
                    }
                }
            }
            assertEquals(0, changed, "pixels outside the masks changed, seed " + seed);
        }
    }

    @Test
    void placementAgreesWithMaskCentroid() {
        for (long seed = 0; seed < N; seed++) {
            Sample s = world.sample(seed);
            check(s, 0, s.labels().placement(), seed);
            if (s.masks().size() == 2) {
                check(s, 1, s.labels().second().orElseThrow().placement(), seed);
            }
        }
        for (Placement p : Placement.values()) {
            for (Size size : Size.values()) {
                for (long seed = 0; seed < 10; seed++) {
                    Instance inst = Instance.random(Category.values()[(int) seed % 8], seed);
                    Sample s = world.render(SceneSpec.single(inst, Scene.GRASS, p, size), seed);
                    check(s, 0, p, seed);
                }
            }
        }
    }

    @Test
    void drawnMainColourIsTheCaptionColour() {
        int small = 0;
        int smallWrong = 0;
        for (long seed = 0; seed < 2 * N; seed++) {
            Sample s = world.sample(seed);
            for (int k = 0; k < s.masks().size(); k++) {
                Placed p = k == 0 ? s.labels().spec().primary() : s.labels().spec().second();
                ColorWord named = p.instance().color();
                boolean right = dominantColour(s.image(), s.masks().get(k), named) == named;
                if (p.size() == Size.SMALL) {
                    small++;
                    smallWrong += right ? 0 : 1;
                } else {
                    // Patterns, eyes and windows take some pixels, but the named colour must dominate.
                    assertTrue(right, "main colour does not dominate, seed " + seed + ": " + s.caption());
                }
            }
        }
        // A small object is about 20 pixels tall; outline blends can outnumber its flat colour now and then.
        assertTrue(smallWrong <= 0.03 * small, smallWrong + " of " + small + " small objects");
    }

    /**
     * Most common colour word inside the mask among pixels that clearly show a palette colour (antialiased
     * blends are skipped), not counting the outline's colour (black; grey for black objects).
     */
    static ColorWord dominantColour(BufferedImage img, float[] mask, ColorWord labelled) {
        ColorWord outline = labelled == ColorWord.BLACK ? ColorWord.GREY : ColorWord.BLACK;
        int[] px = DeterminismTest.pixels(img);
        Map<ColorWord, Integer> counts = new EnumMap<>(ColorWord.class);
        for (int i = 0; i < px.length; i++) {
            ColorWord c = ColorWord.nearest(px[i]);
            if (mask[i] > 0.99 && c != outline && ColorWord.distance(px[i], c.rgb()) < 45) {
                counts.merge(c, 1, Integer::sum);
            }
        }
        return counts.entrySet().stream().max(Map.Entry.comparingByValue()).map(Map.Entry::getKey).orElse(null);
    }

    private static void check(Sample s, int index, Placement p, long seed) {
        int n = s.size();
        float[] m = s.masks().get(index);
        double sum = 0;
        double sx = 0;
        double sy = 0;
        for (int i = 0; i < m.length; i++) {
            sum += m[i];
            sx += m[i] * (i % n + 0.5);
            sy += m[i] * (i / n + 0.5);
        }
        double x = sx / sum / n;
        double y = sy / sum / n;
        String what = p + " centroid (" + x + ", " + y + ") seed " + seed + " " + s.caption();
        switch (p) {
            case LEFT -> assertTrue(x < 0.42, what);
            case RIGHT -> assertTrue(x > 0.58, what);
            case TOP -> assertTrue(y < 0.45 && Math.abs(x - 0.5) < 0.12, what);
            case BOTTOM -> assertTrue(y > 0.55 && Math.abs(x - 0.5) < 0.12, what);
            case CENTER -> assertTrue(Math.abs(x - 0.5) < 0.12 && y > 0.4 && y < 0.68, what);
        }
    }
}
