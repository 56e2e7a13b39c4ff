package dev.perfusion.perfusion;

import javax.imageio.ImageIO;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/** The user's photos of the concept (and optional masks), read, squared and augmented with crops and flips. */
public final class TrainingImages {
    /** How a non-square photo becomes square. */
    public enum Fit { CROP, PAD }

    /** One augmented view: the square image and its mask (1 everywhere when no mask was given). */
    public record View(BufferedImage image, float[] mask) {}

    private TrainingImages() {}

    public static List<Path> list(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) throw new IOException(dir + ": no such folder of training images");
        List<Path> files;
        try (Stream<Path> s = Files.list(dir)) {
            files = s.filter(Files::isRegularFile).filter(p -> !p.getFileName().toString().startsWith(".")).sorted().toList();
        }
        if (files.isEmpty()) throw new IOException(dir + ": no images in the folder (expected a few .png or .jpg photos of the concept)");
        return files;
    }

    public static BufferedImage read(Path file) throws IOException {
        BufferedImage img;
        try {
            img = ImageIO.read(file.toFile());
        } catch (IOException e) {
            throw new IOException(file + ": unreadable image: " + e.getMessage(), e);
        }
        if (img == null) throw new IOException(file + ": not an image this program can read (PNG, JPEG, BMP or GIF)");
        return img;
    }

    /**
     * {@code perImage} augmented views of every image at {@code size}: a random crop of 80-100% of the square,
     * mirrored half of the time; masks (same file stem in {@code masks}) follow the same crop and flip.
     */
    public static List<View> views(Path dir, Path masks, int size, Fit fit, int perImage, long seed) throws IOException {
        SplittableRandom rng = new SplittableRandom(seed);
        List<View> out = new ArrayList<>();
        for (Path file : list(dir)) {
            BufferedImage square = square(read(file), fit);
            BufferedImage mask = masks == null ? null : square(read(maskFor(masks, file)), fit);
            for (int k = 0; k < perImage; k++) {
                double scale = k == 0 ? 1.0 : 0.8 + 0.2 * rng.nextDouble();
                int side = (int) Math.round(square.getWidth() * scale);
                int x = rng.nextInt(square.getWidth() - side + 1), y = rng.nextInt(square.getHeight() - side + 1);
                boolean flip = k % 2 == 1;
                BufferedImage view = resize(square.getSubimage(x, y, side, side), size, flip);
                float[] m = new float[size * size];
                if (mask == null) {
                    java.util.Arrays.fill(m, 1f);
                } else {
                    BufferedImage mv = resize(mask.getSubimage(x, y, side, side), size, flip);
                    for (int i = 0; i < m.length; i++) m[i] = (mv.getRGB(i % size, i / size) & 255) / 255f;
                }
                out.add(new View(view, m));
            }
        }
        return out;
    }

    private static Path maskFor(Path masks, Path image) throws IOException {
        String stem = image.getFileName().toString().replaceFirst("\\.[^.]+$", "");
        for (String ext : List.of(".png", ".jpg", ".jpeg", ".bmp", ".gif")) {
            Path p = masks.resolve(stem + ext);
            if (Files.isRegularFile(p)) return p;
        }
        throw new IOException(masks + ": no mask for " + image.getFileName() + " (expected " + stem + ".png)");
    }

    static BufferedImage square(BufferedImage img, Fit fit) {
        int w = img.getWidth(), h = img.getHeight();
        if (w == h) return toRgb(img);
        if (fit == Fit.CROP) {
            int s = Math.min(w, h);
            return toRgb(img.getSubimage((w - s) / 2, (h - s) / 2, s, s));
        }
        int s = Math.max(w, h);
        BufferedImage out = new BufferedImage(s, s, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = out.createGraphics();
        g.setColor(java.awt.Color.WHITE);
        g.fillRect(0, 0, s, s);
        g.drawImage(img, (s - w) / 2, (s - h) / 2, null);
        g.dispose();
        return out;
    }

    private static BufferedImage toRgb(BufferedImage img) {
        BufferedImage out = new BufferedImage(img.getWidth(), img.getHeight(), BufferedImage.TYPE_INT_RGB);
        Graphics2D g = out.createGraphics();
        g.drawImage(img, 0, 0, null);
        g.dispose();
        return out;
    }

    static BufferedImage resize(BufferedImage img, int size, boolean flip) {
        BufferedImage out = new BufferedImage(size, size, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = out.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_BICUBIC);
        g.setRenderingHint(RenderingHints.KEY_RENDERING, RenderingHints.VALUE_RENDER_QUALITY);
        if (flip) g.drawImage(img, size, 0, -size, size, null);
        else g.drawImage(img, 0, 0, size, size, null);
        g.dispose();
        return out;
    }

}
