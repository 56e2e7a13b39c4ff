package dev.perfusion.training;

import dev.perfusion.io.Png;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The photos are checked without a model: readable, large enough for the training resolution, masks of their size. */
class TrainingImagesTest {
    @TempDir Path tmp;

    @Test
    void photosSmallerThanTheResolutionAreWarnedAboutAndTinyOnesRefused() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("photos"));
        write(dir.resolve("big.png"), 600, 800);
        write(dir.resolve("small.png"), 200, 300);
        List<String> warnings = new ArrayList<>();
        assertEquals(2, TrainingImages.check(dir, null, 512, TrainingImages.Fit.CROP, warnings::add).size());
        assertEquals(List.of("warning: " + dir.resolve("small.png") + ": 200x300 pixels is smaller than the training resolution"
                + " 512x512; it is upscaled, and the concept learns its blur"), warnings);

        write(dir.resolve("thumb.png"), 100, 400);
        IOException e = assertThrows(IOException.class, () -> TrainingImages.check(dir, null, 512, TrainingImages.Fit.PAD, w -> {}));
        assertEquals(dir.resolve("thumb.png") + ": 100x400 pixels is too small to learn from: training is at 512x512"
                + " and a photo's smaller side must be at least 128 pixels", e.getMessage());
        // the trainer's own reading refuses it too
        assertThrows(IOException.class, () -> TrainingImages.views(dir, null, 512, TrainingImages.Fit.CROP, 1, 1));
        assertEquals(8, TrainingImages.minimumSide(16));
    }

    @Test
    void masksMustBeThereAndOfTheirPhotosSize() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("photos")), masks = Files.createDirectories(tmp.resolve("masks"));
        write(dir.resolve("a.png"), 64, 64);
        IOException none = assertThrows(IOException.class, () -> TrainingImages.check(dir, masks, 64, TrainingImages.Fit.CROP, w -> {}));
        assertTrue(none.getMessage().contains("no mask for a.png"), none.getMessage());
        write(masks.resolve("a.png"), 48, 64);
        IOException size = assertThrows(IOException.class, () -> TrainingImages.check(dir, masks, 64, TrainingImages.Fit.CROP, w -> {}));
        assertEquals(masks.resolve("a.png") + ": the mask is 48x64 pixels but its image a.png is 64x64; a mask must have its image's size",
                size.getMessage());
        IOException missing = assertThrows(IOException.class,
                () -> TrainingImages.check(dir, tmp.resolve("nowhere"), 64, TrainingImages.Fit.CROP, w -> {}));
        assertEquals(tmp.resolve("nowhere") + ": no such folder of masks", missing.getMessage());
        // a black mask (a failed export) weighed every pixel alike, as no mask does, and said nothing
        write(masks.resolve("a.png"), 64, 64);
        IOException black = assertThrows(IOException.class, () -> TrainingImages.check(dir, masks, 64, TrainingImages.Fit.CROP, w -> {}));
        assertEquals(masks.resolve("a.png") + ": the mask is black all over; white (or any colour) marks the pixels of the thing to learn, black the rest",
                black.getMessage());
    }

    /** A mask painted red on black marks what it covers (only its blue channel was read: red read as nothing). */
    @Test
    void aMaskInAnyColourMarksWhatItCovers() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("photos")), masks = Files.createDirectories(tmp.resolve("masks"));
        write(dir.resolve("a.png"), 16, 16);
        BufferedImage red = new BufferedImage(16, 16, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 16; y++) for (int x = 0; x < 8; x++) red.setRGB(x, y, 0xFF0000);
        Png.write(masks.resolve("a.png"), red, Map.of());
        float[] m = TrainingImages.views(dir, masks, 16, TrainingImages.Fit.CROP, 1, 1).get(0).mask();
        assertEquals(1f, m[8 * 16 + 2], "the red left half is marked");
        assertEquals(0f, m[8 * 16 + 13], "the black right half is not");
    }

    @Test
    void aHeaderDeclaringGigapixelsIsRefusedBeforeDecoding() throws IOException {
        // 57 bytes that declare a 100000 x 100000 PNG: decoding would allocate 40 GB
        java.nio.ByteBuffer ihdr = java.nio.ByteBuffer.allocate(17).put("IHDR".getBytes(java.nio.charset.StandardCharsets.US_ASCII))
                .putInt(100_000).putInt(100_000).put(new byte[] {8, 2, 0, 0, 0});
        java.util.zip.CRC32 crc = new java.util.zip.CRC32();
        crc.update(ihdr.array());
        java.nio.ByteBuffer png = java.nio.ByteBuffer.allocate(8 + 4 + 17 + 4 + 12)
                .put(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}).putInt(13).put(ihdr.array()).putInt((int) crc.getValue())
                .putInt(0).put("IEND".getBytes(java.nio.charset.StandardCharsets.US_ASCII)).putInt(0xAE426082);
        Path bomb = Files.write(tmp.resolve("bomb.png"), png.array());
        IOException e = assertThrows(IOException.class, () -> TrainingImages.read(bomb));
        assertEquals(bomb + ": 100000x100000 pixels is not a photo this program reads (at most 67108864 pixels, e.g. 8192x8192);"
                + " scale it down", e.getMessage());
    }

    @Test
    void aDamagedImageIsAnErrorNamingTheFile() throws IOException {
        Path good = tmp.resolve("good.png");
        write(good, 64, 64);
        byte[] bytes = Files.readAllBytes(good);
        Path cut = Files.write(tmp.resolve("cut.png"), java.util.Arrays.copyOf(bytes, bytes.length / 2));
        IOException e = assertThrows(IOException.class, () -> TrainingImages.read(cut));
        assertTrue(e.getMessage().startsWith(cut + ": unreadable image: "), e.getMessage());
        assertEquals(64, TrainingImages.read(good).getWidth());
    }

    @Test
    void transparentPixelsAreLearnedOverWhiteAndAPaddedMasksMarginIsNotLearned() throws IOException {
        Path photos = Files.createDirectories(tmp.resolve("cutouts")), masks = Files.createDirectories(tmp.resolve("masks"));
        // a 32x16 cut-out: an opaque red left half, a transparent right half; its mask keeps all of it
        BufferedImage cutout = new BufferedImage(32, 16, BufferedImage.TYPE_INT_ARGB);
        for (int y = 0; y < 16; y++) for (int x = 0; x < 16; x++) cutout.setRGB(x, y, 0xFFFF0000);
        Png.write(photos.resolve("a.png"), cutout, Map.of());
        BufferedImage all = new BufferedImage(32, 16, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 16; y++) for (int x = 0; x < 32; x++) all.setRGB(x, y, 0xFFFFFF);
        Png.write(masks.resolve("a.png"), all, Map.of());

        TrainingImages.View cropped = TrainingImages.views(photos, null, 16, TrainingImages.Fit.CROP, 1, 1).get(0);
        assertEquals(0xFFFFFF, cropped.image().getRGB(15, 8) & 0xFFFFFF, "the transparent half is white, not black");
        TrainingImages.View padded = TrainingImages.views(photos, masks, 32, TrainingImages.Fit.PAD, 1, 1).get(0);
        assertEquals(0xFF0000, padded.image().getRGB(4, 16) & 0xFFFFFF, "the opaque half as it is");
        assertEquals(0xFFFFFF, padded.image().getRGB(4, 2) & 0xFFFFFF, "the padded margin above, white");
        assertEquals(1f, padded.mask()[16 * 32 + 4], "the mask keeps the photo");
        assertEquals(0f, padded.mask()[2 * 32 + 4], "and not the margin the padding added");
    }

    private static void write(Path file, int width, int height) throws IOException {
        Png.write(file, new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB), Map.of());
    }
}
