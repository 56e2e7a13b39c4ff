package dev.perfusion.io;

import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageTypeSpecifier;
import javax.imageio.ImageWriter;
import javax.imageio.metadata.IIOInvalidTreeException;
import javax.imageio.metadata.IIOMetadata;
import javax.imageio.metadata.IIOMetadataNode;
import javax.imageio.stream.MemoryCacheImageOutputStream;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** PNG files with text chunks (the {@code parameters} key that SD tools read), written atomically. */
public final class Png {
    private Png() {}

    public static void write(Path target, BufferedImage image, Map<String, String> text) throws IOException {
        ImageWriter writer = ImageIO.getImageWritersByFormatName("png").next();
        try {
            IIOMetadata meta = writer.getDefaultImageMetadata(ImageTypeSpecifier.createFromRenderedImage(image), null);
            if (text != null && !text.isEmpty()) {
                IIOMetadataNode entries = new IIOMetadataNode("tEXt");
                text.forEach((k, v) -> {
                    IIOMetadataNode e = new IIOMetadataNode("tEXtEntry");
                    e.setAttribute("keyword", k);
                    e.setAttribute("value", v);
                    entries.appendChild(e);
                });
                IIOMetadataNode root = new IIOMetadataNode("javax_imageio_png_1.0");
                root.appendChild(entries);
                try {
                    meta.mergeTree("javax_imageio_png_1.0", root);
                } catch (IIOInvalidTreeException e) {
                    throw new IOException("cannot add PNG text metadata: " + e.getMessage(), e);
                }
            }
            AtomicFiles.write(target, out -> {
                try (MemoryCacheImageOutputStream ios = new MemoryCacheImageOutputStream(out)) {
                    writer.setOutput(ios);
                    writer.write(null, new IIOImage(image, null, meta), null);
                }
            });
        } finally {
            writer.dispose();
        }
    }

    /** Reads the text chunks of a PNG file. */
    public static Map<String, String> readText(Path file) throws IOException {
        try (var in = ImageIO.createImageInputStream(file.toFile())) {
            var readers = ImageIO.getImageReaders(in);
            if (!readers.hasNext()) throw new IOException(file + ": not an image");
            var reader = readers.next();
            reader.setInput(in);
            IIOMetadata meta = reader.getImageMetadata(0);
            var root = (IIOMetadataNode) meta.getAsTree("javax_imageio_png_1.0");
            Map<String, String> out = new java.util.LinkedHashMap<>();
            var nodes = root.getElementsByTagName("tEXtEntry");
            for (int i = 0; i < nodes.getLength(); i++) {
                var e = (IIOMetadataNode) nodes.item(i);
                out.put(e.getAttribute("keyword"), e.getAttribute("value"));
            }
            return out;
        }
    }

    /** Images from an NCHW RGB tensor with values in [0, 1] (rounded as diffusers' PIL conversion does). */
    public static List<BufferedImage> toImages(Tensor nchw) {
        long[] s = Ops.shape(nchw);
        if (s.length != 4 || s[1] != 3) throw new IllegalArgumentException("expected N x 3 x H x W, got " + Ops.shapeString(nchw));
        int n = (int) s[0], h = (int) s[2], w = (int) s[3];
        float[] v = Ops.toFloats(nchw);
        List<BufferedImage> out = new ArrayList<>(n);
        int plane = h * w;
        for (int b = 0; b < n; b++) {
            BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
            int base = b * 3 * plane;
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    int i = y * w + x;
                    img.setRGB(x, y, (to8(v[base + i]) << 16) | (to8(v[base + plane + i]) << 8) | to8(v[base + 2 * plane + i]));
                }
            }
            out.add(img);
        }
        return out;
    }

    private static int to8(float x) {
        return Math.max(0, Math.min(255, Math.round(x * 255f)));
    }

    /** A float NCHW tensor in [-1, 1] from an image (for VAE encoding). */
    public static Tensor toTensor(BufferedImage img) {
        int h = img.getHeight(), w = img.getWidth(), plane = h * w;
        float[] v = new float[3 * plane];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int rgb = img.getRGB(x, y), i = y * w + x;
                v[i] = ((rgb >> 16) & 255) / 127.5f - 1f;
                v[plane + i] = ((rgb >> 8) & 255) / 127.5f - 1f;
                v[2 * plane + i] = (rgb & 255) / 127.5f - 1f;
            }
        }
        return Ops.fromFloats(v, 1, 3, h, w);
    }
}
