package dev.perfusion.training;

import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.function.Consumer;
import java.util.stream.Stream;

/** The user's photos of the concept (and optional masks), read, squared and augmented with crops and flips. */
public final class TrainingImages {
    /** How a non-square photo becomes square. */
    public enum Fit { CROP, PAD }

    /** One augmented view: the square image and its mask (1 everywhere when no mask was given). */
    public record View(BufferedImage image, float[] mask) {}

    private TrainingImages() {}

    public static List<Path> list(Path dir) throws IOException {
        if (Files.isRegularFile(dir)) throw new IOException(dir + ": a file, not a folder (expected a folder of training images)");
        if (!Files.isDirectory(dir)) throw new IOException(dir + ": no such folder of training images");
        List<Path> files;
        try (Stream<Path> s = Files.list(dir)) {
            files = s.filter(Files::isRegularFile).filter(p -> !p.getFileName().toString().startsWith(".")).sorted().toList();
        }
        if (files.isEmpty()) throw new IOException(dir + ": no images in the folder (expected a few .png or .jpg photos of the concept)");
        return files;
    }

    /** Photos past this many pixels (8192 x 8192) are refused before they are decoded: a few bytes can declare gigapixels. */
    public static final long MAX_PIXELS = 1L << 26;

    /** The image in {@code file}, turned upright where its EXIF orientation says it is stored turned (phone photos). */
    public static BufferedImage read(Path file) throws IOException {
        if (!Files.isRegularFile(file)) throw new IOException(file + ": no such image file");
        try (ImageInputStream in = ImageIO.createImageInputStream(file.toFile())) {
            Iterator<ImageReader> readers = in == null ? java.util.Collections.emptyIterator() : ImageIO.getImageReaders(in);
            if (!readers.hasNext()) throw new IOException(file + ": not an image this program can read (PNG, JPEG, BMP or GIF)");
            ImageReader reader = readers.next();
            try {
                reader.setInput(in, true, true);
                long w = reader.getWidth(0), h = reader.getHeight(0);
                if (w <= 0 || h <= 0 || w * h > MAX_PIXELS) {
                    throw new IOException(file + ": " + w + "x" + h + " pixels is not a photo this program reads (at most "
                            + MAX_PIXELS + " pixels, e.g. 8192x8192); scale it down");
                }
                return ExifOrientation.upright(reader.read(0), ExifOrientation.of(file));
            } catch (IOException | RuntimeException e) {
                if (e instanceof IOException && e.getMessage() != null && e.getMessage().startsWith(file.toString())) throw (IOException) e;
                // ImageIO's decoders fail on damaged files with messages that name no file, or with runtime exceptions
                String what = e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
                throw new IOException(file + ": unreadable image: " + what, e);
            } finally {
                reader.dispose();
            }
        }
    }

    /**
     * Reads every photo in {@code dir} (and its mask in {@code masks}, when given) and checks it can be trained on
     * at {@code size}, without a model: each must be an image whose smaller side is at least {@link #minimumSide}; one
     * that must be upscaled to {@code size} is used, with a warning. A mask must have its photo's size.
     *
     * @return the photos, as {@link #list}
     */
    public static List<Path> check(Path dir, Path masks, int size, Fit fit, Consumer<String> warnings) throws IOException {
        List<Path> files = list(dir);
        if (masks != null && !Files.isDirectory(masks)) throw new IOException(masks + ": no such folder of masks");
        for (Path file : files) {
            BufferedImage img = photo(file, size);
            int w = img.getWidth(), h = img.getHeight();
            int side = fit == Fit.CROP ? Math.min(w, h) : Math.max(w, h);
            if (side < size) {
                warnings.accept("warning: " + file + ": " + w + "x" + h + " pixels is smaller than the training resolution "
                        + size + "x" + size + "; it is upscaled, and the concept learns its blur");
            }
            if (masks != null) mask(masks, file, img);
        }
        return files;
    }

    /** The smallest side a photo may have to be trained on at {@code size}: a quarter of it, and no less than 8 pixels. */
    public static int minimumSide(int size) {
        return Math.max(8, (size + 3) / 4);
    }

    /** A photo that is large enough to be trained on at {@code size}. */
    private static BufferedImage photo(Path file, int size) throws IOException {
        BufferedImage img = read(file);
        int w = img.getWidth(), h = img.getHeight();
        if (Math.min(w, h) < minimumSide(size)) {
            throw new IOException(file + ": " + w + "x" + h + " pixels is too small to learn from: training is at " + size
                    + "x" + size + " and a photo's smaller side must be at least " + minimumSide(size) + " pixels");
        }
        return img;
    }

    /** The mask of {@code image} (read from {@code file}), which must have its size. */
    private static BufferedImage mask(Path masks, Path file, BufferedImage image) throws IOException {
        Path maskFile = maskFor(masks, file);
        BufferedImage mask = read(maskFile);
        if (mask.getWidth() != image.getWidth() || mask.getHeight() != image.getHeight()) {
            throw new IOException(maskFile + ": the mask is " + mask.getWidth() + "x" + mask.getHeight() + " pixels but its image "
                    + file.getFileName() + " is " + image.getWidth() + "x" + image.getHeight() + "; a mask must have its image's size");
        }
        boolean marks = false;
        for (int y = 0; y < mask.getHeight() && !marks; y++) for (int x = 0; x < mask.getWidth() && !marks; x++) marks = (mask.getRGB(x, y) & 0xFFFFFF) != 0;
        // a black mask would weigh every pixel alike (the loss's floor), as if none were given
        if (!marks) throw new IOException(maskFile + ": the mask is black all over; white (or any colour) marks the pixels of the thing to learn, black the rest");
        return mask;
    }

    /** How much a mask's pixel marks the thing: its brightest channel, so that a mask painted in any colour serves. */
    private static float markOf(int rgb) {
        return Math.max((rgb >> 16) & 255, Math.max((rgb >> 8) & 255, rgb & 255)) / 255f;
    }

    /**
     * {@code perImage} augmented views of every image at {@code size}: a random crop of 80-100% of the square,
     * mirrored half of the time; masks (same file stem in {@code masks}) follow the same crop and flip.
     */
    public static List<View> views(Path dir, Path masks, int size, Fit fit, int perImage, long seed) throws IOException {
        SplittableRandom rng = new SplittableRandom(seed);
        List<View> out = new ArrayList<>();
        for (Path file : list(dir)) {
            BufferedImage photo = photo(file, size);
            BufferedImage square = square(photo, fit, java.awt.Color.WHITE);
            BufferedImage mask = masks == null ? null : square(mask(masks, file, photo), fit, java.awt.Color.BLACK);
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
                    for (int i = 0; i < m.length; i++) m[i] = markOf(mv.getRGB(i % size, i / size));
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

    /**
     * {@code img} made square by {@code fit}, in RGB over {@code backdrop}: what a photo's transparent pixels and a
     * padded photo's margins show (white for a photo, as a cut-out product shot means; black for a mask: not learned).
     */
    static BufferedImage square(BufferedImage img, Fit fit, java.awt.Color backdrop) {
        int w = img.getWidth(), h = img.getHeight();
        if (w != h && fit == Fit.CROP) {
            int s = Math.min(w, h);
            return onto(img.getSubimage((w - s) / 2, (h - s) / 2, s, s), s, backdrop);
        }
        return onto(img, Math.max(w, h), backdrop);
    }

    /** {@code img} centred on a {@code side} x {@code side} RGB square of {@code backdrop}. */
    private static BufferedImage onto(BufferedImage img, int side, java.awt.Color backdrop) {
        BufferedImage out = new BufferedImage(side, side, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = out.createGraphics();
        g.setColor(backdrop);
        g.fillRect(0, 0, side, side);
        g.drawImage(img, (side - img.getWidth()) / 2, (side - img.getHeight()) / 2, null);
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
