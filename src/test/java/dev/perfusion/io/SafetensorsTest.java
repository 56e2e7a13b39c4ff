package dev.perfusion.io;

import dev.perfusion.Fixtures;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class SafetensorsTest {
    @TempDir Path tmp;

    @Test
    void roundTripsF32AndF16WithMetadata() throws IOException {
        try (Scope s = Scope.inference()) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            tensors.put("a", Ops.fromFloats(new float[] {1, -2.5f, 3, 0.125f, 5, 6}, 2, 3));
            tensors.put("b.c", Ops.fromFloats(new float[] {7}, 1));
            Path f32 = tmp.resolve("x.safetensors");
            Safetensors.write(f32, tensors, Map.of("format", "pt", "word", "my-teddy"), Safetensors.StoredType.F32);
            Safetensors st = Safetensors.open(f32);
            assertEquals(Map.of("format", "pt", "word", "my-teddy"), st.metadata());
            assertArrayEquals(new long[] {2, 3}, st.shape("a"));
            assertArrayEquals(new float[] {1, -2.5f, 3, 0.125f, 5, 6}, Ops.toFloats(st.get("a")));
            Path f16 = tmp.resolve("h.safetensors");
            Safetensors.write(f16, tensors, Map.of(), Safetensors.StoredType.F16);
            assertEquals("F16", Safetensors.open(f16).entries().get("a").dtype());
            assertArrayEquals(new float[] {1, -2.5f, 3, 0.125f, 5, 6}, Ops.toFloats(Safetensors.open(f16).get("a")));
            assertEquals(0, Files.list(tmp).filter(p -> p.toString().endsWith(".part")).count(), "no temp file left");
        }
    }

    @Test
    void readsTheFixtureF16WeightsAsFloat32() throws IOException {
        Path unet = Fixtures.diffusers().resolve("unet/diffusion_pytorch_model.safetensors");
        Safetensors st = Safetensors.open(unet);
        assertTrue(st.keys().contains("conv_in.weight"));
        try (Scope s = Scope.inference()) {
            Tensor w = st.get("conv_in.weight");
            assertEquals(org.bytedeco.pytorch.global.torch.ScalarType.Float, w.scalar_type().intern());
            assertArrayEquals(st.shape("conv_in.weight"), Ops.shape(w));
            assertTrue(Ops.maxAbs(w) > 0);
        }
    }

    @Test
    void readsTensorsPastTwoGigabytes() throws IOException {
        // a sparse file: a 2.25 GiB U8 tensor (never read, so never materialised) followed by a small F32 tensor
        long big = (9L << 28);
        String header = "{\"pad\":{\"dtype\":\"U8\",\"shape\":[" + big + "],\"data_offsets\":[0," + big + "]},"
                + "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[" + big + "," + (big + 8) + "]}}";
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        Path f = tmp.resolve("large.safetensors");
        try (var raf = new java.io.RandomAccessFile(f.toFile(), "rw")) {
            ByteBuffer start = ByteBuffer.allocate(8 + h.length).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length).put(h);
            raf.write(start.array());
            raf.seek(8 + h.length + big);
            ByteBuffer w = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putFloat(1.5f).putFloat(-2f);
            raf.write(w.array());
        }
        assertTrue(Files.size(f) > (2L << 30));
        try (Scope s = Scope.inference()) {
            assertArrayEquals(new float[] {1.5f, -2f}, Ops.toFloats(Safetensors.open(f).get("w")));
        }
    }

    @Test
    void truncatedFileIsAClearError() throws IOException {
        Path good = tmp.resolve("good.safetensors");
        try (Scope s = Scope.inference()) {
            Safetensors.write(good, Map.of("w", Ops.ones(64, 64)), Map.of(), Safetensors.StoredType.F32);
        }
        byte[] all = Files.readAllBytes(good);
        Path cut = tmp.resolve("cut.safetensors");
        Files.write(cut, Arrays.copyOf(all, all.length - 100));
        IOException e = assertThrows(IOException.class, () -> Safetensors.open(cut));
        assertTrue(e.getMessage().contains("cut.safetensors") && e.getMessage().contains("'w'")
                && e.getMessage().contains("outside the file"), e.getMessage());
        Path tiny = tmp.resolve("tiny.safetensors");
        Files.write(tiny, Arrays.copyOf(all, 20));
        assertTrue(assertThrows(IOException.class, () -> Safetensors.open(tiny)).getMessage().contains("header length"));
    }

    @Test
    void corruptHeadersAreClearErrors() throws IOException {
        assertHeaderError("{not json", "invalid JSON");
        assertHeaderError("{\"w\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}}", "unknown dtype Q7");
        assertHeaderError("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", "needs 8 bytes");
        assertHeaderError("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,400]}}", "outside the file");
        assertHeaderError("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", "data_offsets");
        IOException missing = assertThrows(IOException.class, () -> Safetensors.open(tmp.resolve("nope.safetensors")));
        assertTrue(missing.getMessage().contains("no such file"));
    }

    @Test
    void headerLengthIsShownUnsigned() throws IOException {
        Path f = tmp.resolve("huge-header.safetensors");
        ByteBuffer b = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN).putLong(0, -16L); // 2^64 - 16 as a u64
        Files.write(f, b.array());
        IOException e = assertThrows(IOException.class, () -> Safetensors.open(f));
        assertTrue(e.getMessage().contains("header length 18446744073709551600 does not fit in the file of 64 bytes"),
                e.getMessage());
        assertFalse(e.getMessage().contains("length -"), e.getMessage());
    }

    @Test
    void shapesThatOverflowOrAreNotIntegersAreClearErrors() throws IOException {
        // 2^62 x 4 floats is 2^66 bytes: the product overflows a long and must not wrap to a size that matches
        assertHeaderError("{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,0]}}",
                "needs more bytes than a file can hold");
        assertHeaderError("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", "bad shape");
        assertHeaderError("{\"w\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", "shape must be a list");
        assertHeaderError("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.5]}}", "bad data_offsets");
    }

    private void assertHeaderError(String header, String expected) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + 8).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h).putLong(0);
        Path f = tmp.resolve("bad.safetensors");
        Files.write(f, b.array());
        IOException e = assertThrows(IOException.class, () -> Safetensors.open(f));
        assertTrue(e.getMessage().contains(expected) && e.getMessage().contains("bad.safetensors"), e.getMessage());
    }
}
