package dev.perfusion.training;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** A phone's portrait photo, stored sideways with an EXIF orientation, is read upright. */
public class ExifOrientationTest {
    @TempDir Path tmp;

    /** A 64x32 JPEG whose stored left half is red and right half blue, with an EXIF orientation (none where 0). */
    private static byte[] jpeg(int orientation, boolean littleEndian) throws IOException {
        BufferedImage img = new BufferedImage(64, 32, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setColor(Color.RED);
        g.fillRect(0, 0, 32, 32);
        g.setColor(Color.BLUE);
        g.fillRect(32, 0, 32, 32);
        g.dispose();
        return withOrientation(img, orientation, littleEndian);
    }

    /** {@code img} as a JPEG file with an EXIF orientation (none where 0), as a phone writes one. */
    public static byte[] withOrientation(BufferedImage img, int orientation, boolean littleEndian) throws IOException {
        ByteArrayOutputStream jpeg = new ByteArrayOutputStream();
        ImageIO.write(img, "jpg", jpeg);
        byte[] plain = jpeg.toByteArray();
        if (orientation == 0) return plain;
        // APP1: "Exif\0\0", a TIFF header, one IFD holding one entry, the orientation (tag 0x0112, SHORT, count 1)
        byte[] tiff = littleEndian
                ? new byte[] {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, (byte) orientation, 0, 0, 0, 0, 0, 0, 0}
                : new byte[] {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, (byte) orientation, 0, 0, 0, 0, 0, 0};
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(plain, 0, 2); // SOI
        int length = 2 + 6 + tiff.length;
        out.write(new byte[] {(byte) 0xFF, (byte) 0xE1, (byte) (length >> 8), (byte) length, 'E', 'x', 'i', 'f', 0, 0});
        out.write(tiff);
        out.write(plain, 2, plain.length - 2);
        return out.toByteArray();
    }

    private BufferedImage read(byte[] file) throws IOException {
        Path p = tmp.resolve("photo.jpg");
        Files.write(p, file);
        return TrainingImages.read(p);
    }

    private static boolean red(BufferedImage img, int x, int y) {
        Color c = new Color(img.getRGB(x, y));
        return c.getRed() > 200 && c.getBlue() < 60;
    }

    private static boolean blue(BufferedImage img, int x, int y) {
        Color c = new Color(img.getRGB(x, y));
        return c.getBlue() > 200 && c.getRed() < 60;
    }

    @Test
    void aPhotoStoredAQuarterTurnAnticlockwiseIsTurnedClockwise() throws IOException {
        assertEquals(6, ExifOrientation.of(jpeg(6, false)));
        BufferedImage upright = read(jpeg(6, false));
        assertEquals(32, upright.getWidth(), "a portrait: width and height trade places");
        assertEquals(64, upright.getHeight());
        assertTrue(red(upright, 16, 8), "the stored left half is seen at the top");
        assertTrue(blue(upright, 16, 56), "the stored right half at the bottom");
    }

    @Test
    void aPhotoStoredAQuarterTurnClockwiseIsTurnedAnticlockwiseAndIntelByteOrderIsRead() throws IOException {
        assertEquals(8, ExifOrientation.of(jpeg(8, true)));
        BufferedImage upright = read(jpeg(8, true));
        assertEquals(32, upright.getWidth());
        assertTrue(blue(upright, 16, 8), "the stored right half is seen at the top");
        assertTrue(red(upright, 16, 56));
    }

    @Test
    void upsideDownAndMirroredPhotosKeepTheirSize() throws IOException {
        BufferedImage turned = read(jpeg(3, false));
        assertEquals(64, turned.getWidth());
        assertTrue(blue(turned, 8, 16) && red(turned, 56, 16), "upside down: the halves trade sides");
        BufferedImage mirrored = read(jpeg(2, true));
        assertTrue(blue(mirrored, 8, 16) && red(mirrored, 56, 16), "mirrored: the halves trade sides");
        BufferedImage flipped = read(jpeg(4, true));
        assertTrue(red(flipped, 8, 16) && blue(flipped, 56, 16), "mirrored top to bottom: the halves stay");
    }

    @Test
    void photosWithoutAnOrientationAreReadAsStored() throws IOException {
        assertEquals(1, ExifOrientation.of(jpeg(0, false)));
        assertEquals(1, ExifOrientation.of(jpeg(1, false)));
        assertEquals(1, ExifOrientation.of(new byte[] {(byte) 0x89, 'P', 'N', 'G'}), "not a JPEG");
        assertEquals(1, ExifOrientation.of(new byte[0]));
        BufferedImage stored = read(jpeg(1, false));
        assertEquals(64, stored.getWidth());
        assertTrue(red(stored, 8, 16) && blue(stored, 56, 16));
        // a damaged EXIF (its IFD pointing past the segment, an orientation of 9) is taken as none, not an error
        byte[] bad = jpeg(9, false);
        assertEquals(1, ExifOrientation.of(bad));
        bad[2 + 4 + 6 + 7] = 100; // the IFD's offset, past the segment's end
        assertEquals(1, ExifOrientation.of(bad));
        assertEquals(64, read(bad).getWidth());
    }
}
