package dev.perfusion.training;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The EXIF orientation of a JPEG photo, and the photo turned upright by it. A phone stores a portrait photo as its
 * sensor read it, sideways, and records in EXIF how to turn it; image viewers (and diffusers' training scripts, through
 * PIL's exif_transpose) turn it, Java's ImageIO does not, so a concept would learn its object lying on its side.
 */
final class ExifOrientation {
    private ExifOrientation() {}

    /** Only the start of a file is read: EXIF lives in an APP1 segment before the image data, at most 64 KB long. */
    private static final int HEAD = 1 << 17;
    private static final int ORIENTATION_TAG = 0x0112;

    /** The orientation recorded in {@code file} (1-8, see the EXIF standard), or 1 (upright) where none is. */
    static int of(Path file) throws IOException {
        byte[] head;
        try (InputStream in = Files.newInputStream(file)) {
            head = in.readNBytes(HEAD);
        }
        return of(head);
    }

    static int of(byte[] b) {
        if (b.length < 4 || u8(b, 0) != 0xFF || u8(b, 1) != 0xD8) return 1; // not a JPEG
        int at = 2;
        while (at + 4 <= b.length && u8(b, at) == 0xFF) {
            int marker = u8(b, at + 1);
            if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) { at += 2; continue; } // no length
            if (marker == 0xDA || marker == 0xD9) return 1; // the image data starts: no EXIF before it
            int length = (u8(b, at + 2) << 8) | u8(b, at + 3);
            if (length < 2) return 1;
            int body = at + 4, end = Math.min(b.length, at + 2 + length);
            if (marker == 0xE1 && end - body >= 6 && b[body] == 'E' && b[body + 1] == 'x' && b[body + 2] == 'i' && b[body + 3] == 'f'
                    && b[body + 4] == 0 && b[body + 5] == 0) {
                int orientation = fromTiff(b, body + 6, end);
                if (orientation != 0) return orientation;
            }
            at += 2 + length;
        }
        return 1;
    }

    /** The orientation tag of the TIFF structure at {@code [start, end)}: its first IFD (the main image's); 0 if none. */
    private static int fromTiff(byte[] b, int start, int end) {
        if (end - start < 8) return 0;
        boolean little;
        if (b[start] == 'I' && b[start + 1] == 'I') little = true;
        else if (b[start] == 'M' && b[start + 1] == 'M') little = false;
        else return 0;
        if (u16(b, start + 2, little) != 42) return 0;
        long ifd = u32(b, start + 4, little);
        if (ifd < 8 || start + ifd + 2 > end) return 0;
        int at = (int) (start + ifd);
        int entries = u16(b, at, little);
        for (int i = 0; i < entries; i++) {
            int entry = at + 2 + 12 * i;
            if (entry + 12 > end) return 0;
            if (u16(b, entry, little) == ORIENTATION_TAG) {
                int value = u16(b, entry + 8, little); // a SHORT, stored at the start of the value field
                return value >= 1 && value <= 8 ? value : 0;
            }
        }
        return 0;
    }

    /** {@code image} as it is meant to be seen, given its {@code orientation} (1 returns it unchanged). */
    static BufferedImage upright(BufferedImage image, int orientation) {
        if (orientation <= 1 || orientation > 8) return image;
        int w = image.getWidth(), h = image.getHeight();
        boolean swaps = orientation >= 5; // 5-8 turn by a quarter: the width and height trade places
        int outW = swaps ? h : w, outH = swaps ? w : h;
        BufferedImage out = new BufferedImage(outW, outH, image.getColorModel().hasAlpha() ? BufferedImage.TYPE_INT_ARGB : BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < outH; y++) {
            for (int x = 0; x < outW; x++) {
                int sx, sy; // where the pixel seen at (x, y) is stored
                switch (orientation) {
                    case 2 -> { sx = w - 1 - x; sy = y; }          // mirrored left to right
                    case 3 -> { sx = w - 1 - x; sy = h - 1 - y; }  // upside down
                    case 4 -> { sx = x; sy = h - 1 - y; }          // mirrored top to bottom
                    case 5 -> { sx = y; sy = x; }                  // mirrored along the main diagonal
                    case 6 -> { sx = y; sy = h - 1 - x; }          // stored a quarter turn anticlockwise: turned clockwise
                    case 7 -> { sx = w - 1 - y; sy = h - 1 - x; }  // mirrored along the other diagonal
                    default -> { sx = w - 1 - y; sy = x; }         // 8: stored a quarter turn clockwise: turned anticlockwise
                }
                out.setRGB(x, y, image.getRGB(sx, sy));
            }
        }
        return out;
    }

    private static int u8(byte[] b, int i) { return b[i] & 0xFF; }

    private static int u16(byte[] b, int i, boolean little) {
        return little ? u8(b, i) | (u8(b, i + 1) << 8) : (u8(b, i) << 8) | u8(b, i + 1);
    }

    private static long u32(byte[] b, int i, boolean little) {
        return little ? (u16(b, i, true) & 0xFFFFL) | ((long) u16(b, i + 2, true) << 16)
                : ((long) u16(b, i, false) << 16) | (u16(b, i + 2, false) & 0xFFFFL);
    }
}
