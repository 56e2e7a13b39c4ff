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
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * PNG files with text chunks (the {@code parameters} key that SD tools read), written atomically. Text that Latin-1
 * can hold goes in tEXt, other text (emoji, CJK) in iTXt as UTF-8, as PIL's {@code add_text} does; AUTOMATIC1111 and
 * other readers take {@code parameters} from either.
 */
public final class Png {
    private static final Charset LATIN_1 = StandardCharsets.ISO_8859_1;

    private Png() {}

    public static void write(Path target, BufferedImage image, Map<String, String> text) throws IOException {
        ImageWriter writer = ImageIO.getImageWritersByFormatName("png").next();
        try {
            IIOMetadata meta = writer.getDefaultImageMetadata(ImageTypeSpecifier.createFromRenderedImage(image), null);
            if (text != null && !text.isEmpty()) {
                IIOMetadataNode latin1 = new IIOMetadataNode("tEXt"), utf8 = new IIOMetadataNode("iTXt");
                text.forEach((k, v) -> {
                    if (LATIN_1.newEncoder().canEncode(v)) {
                        IIOMetadataNode e = new IIOMetadataNode("tEXtEntry");
                        e.setAttribute("keyword", k);
                        e.setAttribute("value", v);
                        latin1.appendChild(e);
                    } else {
                        IIOMetadataNode e = new IIOMetadataNode("iTXtEntry");
                        e.setAttribute("keyword", k);
                        e.setAttribute("compressionFlag", "FALSE");
                        e.setAttribute("compressionMethod", "0");
                        e.setAttribute("languageTag", "");
                        e.setAttribute("translatedKeyword", "");
                        e.setAttribute("text", v);
                        utf8.appendChild(e);
                    }
                });
                IIOMetadataNode root = new IIOMetadataNode("javax_imageio_png_1.0");
                if (latin1.hasChildNodes()) root.appendChild(latin1);
                if (utf8.hasChildNodes()) root.appendChild(utf8);
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

    /** Reads the text chunks (tEXt, zTXt and iTXt, in file order within each kind) of a PNG file. */
    public static Map<String, String> readText(Path file) throws IOException {
        if (!Files.isRegularFile(file)) throw new IOException(file + ": no such file");
        try (var in = ImageIO.createImageInputStream(file.toFile())) {
            var readers = ImageIO.getImageReadersByFormatName("png");
            var reader = readers.next();
            try {
                reader.setInput(in);
                IIOMetadata meta = reader.getImageMetadata(0);
                var root = (IIOMetadataNode) meta.getAsTree("javax_imageio_png_1.0");
                Map<String, String> out = new java.util.LinkedHashMap<>();
                for (String[] kind : new String[][] {{"tEXtEntry", "value"}, {"zTXtEntry", "text"}, {"iTXtEntry", "text"}}) {
                    var nodes = root.getElementsByTagName(kind[0]);
                    for (int i = 0; i < nodes.getLength(); i++) {
                        var e = (IIOMetadataNode) nodes.item(i);
                        out.put(e.getAttribute("keyword"), e.getAttribute(kind[1]));
                    }
                }
                return out;
            } catch (IOException | RuntimeException e) {
                // ImageIO's PNG reader says neither which file nor, often, what (e.g. "Error reading PNG metadata")
                Throwable cause = e.getCause() != null && e.getMessage() != null && e.getMessage().startsWith("Error reading")
                        ? e.getCause() : e;
                String what = cause.getMessage() != null ? cause.getMessage() : cause.getClass().getSimpleName();
                throw new IOException(file + ": not a readable PNG file: " + what, e);
            } finally {
                reader.dispose();
            }
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
