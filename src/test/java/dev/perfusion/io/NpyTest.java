package dev.perfusion.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class NpyTest {
    @TempDir Path tmp;

    @Test
    void roundTrips() throws IOException {
        Path f = tmp.resolve("a.npy");
        Npy.writeFloats(f, new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        Npy.Array a = Npy.read(f);
        assertArrayEquals(new long[] {2, 3}, a.shape());
        assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, a.floats());
        Npy.writeFloats(f, new float[] {7}, 1);
        assertArrayEquals(new long[] {1}, Npy.read(f).shape());
    }

    /** A version-1 file with {@code header} and {@code dataBytes} zero bytes of data. */
    private Path file(String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.ISO_8859_1);
        ByteBuffer b = ByteBuffer.allocate(10 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.put((byte) 0x93).put("NUMPY".getBytes(StandardCharsets.US_ASCII)).put((byte) 1).put((byte) 0);
        b.putShort((short) h.length).put(h);
        return Files.write(tmp.resolve("bad.npy"), b.array());
    }

    /** A version-1 file with {@code header} and {@code data}. */
    private Path file(String header, byte[] data) throws IOException {
        Path f = file(header, data.length);
        byte[] all = Files.readAllBytes(f);
        System.arraycopy(data, 0, all, all.length - data.length, data.length);
        return Files.write(f, all);
    }

    @Test
    void narrowerTypesAreWidened() throws IOException {
        // float16 1.5, -2, 65504 (the largest half), 2^-24 (the smallest subnormal)
        Npy.Array half = Npy.read(file("{'descr': '<f2', 'fortran_order': False, 'shape': (4,), }",
                new byte[] {0x00, 0x3e, 0x00, (byte) 0xc0, (byte) 0xff, 0x7b, 0x01, 0x00}));
        assertArrayEquals(new float[] {1.5f, -2f, 65504f, 0x1p-24f}, half.floats());
        Npy.Array ints = Npy.read(file("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }",
                new byte[] {(byte) 0xfe, (byte) 0xff, (byte) 0xff, (byte) 0xff, 7, 0, 0, 0}));
        assertArrayEquals(new long[] {-2, 7}, ints.longs());
        assertArrayEquals(new long[] {200, 1}, Npy.read(file("{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }",
                new byte[] {(byte) 200, 1})).longs());
        assertArrayEquals(new long[] {1, 0}, Npy.read(file("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }",
                new byte[] {1, 0})).longs());
    }

    private void assertError(Path f, String expected) {
        IOException e = assertThrows(IOException.class, () -> Npy.read(f));
        assertTrue(e.getMessage().startsWith(f.toString()) && e.getMessage().contains(expected), e.getMessage());
    }

    @Test
    void badFilesAreClearErrors() throws IOException {
        assertError(file("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 8), "truncated: shape [2, 3] of <f4 needs 24 bytes");
        // dims whose product overflows a long are refused before anything is allocated
        assertError(file("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4), }", 64), "truncated");
        assertError(file("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", 8), "bad shape (2, x)");
        assertError(file("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8), "bad shape");
        assertError(file("{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }", 8), "unsupported dtype <i2");
        // a header length past the end of the file
        Path cut = tmp.resolve("cut.npy");
        Files.write(cut, new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (byte) 0xff, (byte) 0xff, '{'});
        assertError(cut, "truncated: the header says it is 65535 bytes");
        Path v9 = tmp.resolve("v9.npy");
        Files.write(v9, new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 9, 0, 0, 0, 0, 0});
        assertError(v9, "unsupported .npy format version 9");
    }
}
