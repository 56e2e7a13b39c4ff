package dev.perfusion.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class PngTest {
    @TempDir Path tmp;

    private static final List<String> TEXT_CHUNKS = List.of("tEXt", "zTXt", "iTXt");
    private static final BufferedImage IMAGE = new BufferedImage(4, 3, BufferedImage.TYPE_INT_RGB);

    /** The file's chunks as (type, data), straight from the bytes as the PNG specification lays them out. */
    private static List<Map.Entry<String, byte[]>> chunks(Path file) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file));
        b.position(8); // signature
        List<Map.Entry<String, byte[]>> out = new ArrayList<>();
        while (b.remaining() >= 12) {
            byte[] data = new byte[b.getInt()];
            byte[] type = new byte[4];
            b.get(type).get(data).getInt(); // CRC
            out.add(Map.entry(new String(type, StandardCharsets.US_ASCII), data));
        }
        return out;
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) out.writeBytes(p);
        return out.toByteArray();
    }

    @Test
    void asciiParametersStayTExtAsBefore() throws IOException {
        Path file = tmp.resolve("ascii.png");
        String params = "a photo of a cat\nSteps: 20, Sampler: DDIM, Seed: 42";
        Png.write(file, IMAGE, Map.of("parameters", params));
        List<Map.Entry<String, byte[]>> text = chunks(file).stream().filter(c -> TEXT_CHUNKS.contains(c.getKey())).toList();
        assertEquals(1, text.size());
        assertEquals("tEXt", text.get(0).getKey());
        assertArrayEquals(concat("parameters".getBytes(StandardCharsets.US_ASCII), new byte[] {0},
                params.getBytes(StandardCharsets.US_ASCII)), text.get(0).getValue());
        assertEquals(Map.of("parameters", params), Png.readText(file));
    }

    @Test
    void latin1TextIsTExtInLatin1() throws IOException {
        Path file = tmp.resolve("latin1.png");
        Png.write(file, IMAGE, Map.of("parameters", "café crème"));
        var text = chunks(file).stream().filter(c -> TEXT_CHUNKS.contains(c.getKey())).toList();
        assertEquals("tEXt", text.get(0).getKey());
        assertArrayEquals(concat("parameters\0".getBytes(StandardCharsets.US_ASCII),
                "café crème".getBytes(StandardCharsets.ISO_8859_1)), text.get(0).getValue());
        assertEquals("café crème", Png.readText(file).get("parameters"));
    }

    @Test
    void emojiAndCjkGoInITXtAsUtf8() throws IOException {
        Path file = tmp.resolve("utf8.png");
        String params = "一只猫的照片 🐱, Steps: 20";
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("parameters", params);
        meta.put("software", "perfusion");
        Png.write(file, IMAGE, meta);
        var text = chunks(file).stream().filter(c -> TEXT_CHUNKS.contains(c.getKey())).toList();
        assertEquals(List.of("tEXt", "iTXt"), text.stream().map(Map.Entry::getKey).toList());
        // keyword, NUL, compression flag 0, method 0, empty language tag and translated keyword (NUL each), UTF-8 text
        assertArrayEquals(concat("parameters".getBytes(StandardCharsets.US_ASCII), new byte[] {0, 0, 0, 0, 0},
                params.getBytes(StandardCharsets.UTF_8)), text.get(1).getValue());
        assertEquals(Map.of("parameters", params, "software", "perfusion"), Png.readText(file));
    }

    @Test
    void notAPngIsAClearError() throws IOException {
        Path file = Files.writeString(tmp.resolve("fake.png"), "GIF89a, not a PNG");
        IOException e = assertThrows(IOException.class, () -> Png.readText(file));
        assertTrue(e.getMessage().startsWith(file + ": not a readable PNG file"), e.getMessage());
        IOException missing = assertThrows(IOException.class, () -> Png.readText(tmp.resolve("none.png")));
        assertTrue(missing.getMessage().contains("none.png: no such file"), missing.getMessage());
    }
}
