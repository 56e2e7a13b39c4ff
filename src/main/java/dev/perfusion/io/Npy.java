package dev.perfusion.io;

import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * NumPy {@code .npy} (format 1.0/2.0), C order: little-endian float32 and float64, int64; also read (widened to
 * float32 or int64) float16, int32, uint8 and bool.
 */
public final class Npy {
    private Npy() {}

    /** A loaded array: exactly one of {@code floats}, {@code doubles}, {@code longs} is set. */
    public record Array(long[] shape, String dtype, float[] floats, double[] doubles, long[] longs) {
        public Tensor toTensor() {
            if (floats != null) return Ops.fromFloats(floats, shape);
            if (doubles != null) return Ops.fromDoubles(doubles, shape);
            return Ops.fromLongs(longs, shape);
        }

        /** The values as doubles, whatever the stored type. */
        public double[] asDoubles() {
            if (doubles != null) return doubles;
            double[] d = new double[floats != null ? floats.length : longs.length];
            for (int i = 0; i < d.length; i++) d[i] = floats != null ? floats[i] : longs[i];
            return d;
        }
    }

    private static final Pattern DESCR = Pattern.compile("'descr':\\s*'([^']+)'");
    private static final Pattern ORDER = Pattern.compile("'fortran_order':\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape':\\s*\\(([^)]*)\\)");

    public static Array read(Path file) throws IOException {
        long size = Files.size(file);
        if (size > Integer.MAX_VALUE - 8) throw new IOException(file + ": " + size + " bytes; .npy files over 2 GiB are not supported");
        byte[] bytes = Files.readAllBytes(file);
        ByteBuffer buf = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        if (bytes.length < 10 || bytes[0] != (byte) 0x93 || !new String(bytes, 1, 5, StandardCharsets.US_ASCII).equals("NUMPY")) {
            throw new IOException(file + ": not a .npy file (bad magic)");
        }
        int major = bytes[6];
        long headerLen;
        int offset;
        if (major == 1) {
            headerLen = Short.toUnsignedInt(buf.getShort(8));
            offset = 10;
        } else if ((major == 2 || major == 3) && bytes.length >= 12) {
            headerLen = Integer.toUnsignedLong(buf.getInt(8));
            offset = 12;
        } else {
            throw new IOException(file + ": unsupported .npy format version " + major + " (or truncated header)");
        }
        if (offset + headerLen > bytes.length) {
            throw new IOException(file + ": truncated: the header says it is " + headerLen + " bytes, the file has "
                    + (bytes.length - offset) + " after the preamble");
        }
        String header = new String(bytes, offset, (int) headerLen, StandardCharsets.ISO_8859_1);
        String descr = find(DESCR, header, file, "descr");
        if ("True".equals(find(ORDER, header, file, "fortran_order"))) {
            throw new IOException(file + ": Fortran-order arrays are not supported");
        }
        int itemSize = switch (descr) {
            case "<f4", "<i4" -> 4;
            case "<f8", "<i8" -> 8;
            case "<f2" -> 2;
            case "|u1", "|b1" -> 1;
            default -> throw new IOException(file + ": unsupported dtype " + descr + " (expected <f4, <f8, <f2, <i8, <i4, |u1 or |b1)");
        };
        long[] shape = shape(find(SHAPE, header, file, "shape"), file);
        ByteBuffer data = ByteBuffer.wrap(bytes, offset + (int) headerLen, bytes.length - offset - (int) headerLen)
                .slice().order(ByteOrder.LITTLE_ENDIAN);
        // the data must be in the file, so a shape whose bytes overflow cannot be (checked before allocating)
        long n = 1;
        for (long d : shape) n = d == 0 ? 0 : n > data.remaining() / d ? Long.MAX_VALUE : n * d;
        if (n > data.remaining() / itemSize) {
            throw new IOException(file + ": truncated: shape " + Arrays.toString(shape) + " of " + descr + " needs "
                    + (n == Long.MAX_VALUE ? "more" : Long.toString(n * itemSize)) + " bytes, the file has " + data.remaining());
        }
        int count = (int) n;
        return switch (descr) {
            case "<f4" -> { float[] f = new float[count]; data.asFloatBuffer().get(f); yield new Array(shape, descr, f, null, null); }
            case "<f8" -> { double[] d = new double[count]; data.asDoubleBuffer().get(d); yield new Array(shape, descr, null, d, null); }
            case "<f2" -> {
                float[] f = new float[count];
                for (int i = 0; i < count; i++) f[i] = Float16.toFloat(data.getShort(2 * i));
                yield new Array(shape, descr, f, null, null);
            }
            case "<i4" -> { long[] l = new long[count]; for (int i = 0; i < count; i++) l[i] = data.getInt(4 * i); yield new Array(shape, descr, null, null, l); }
            case "|u1", "|b1" -> { long[] l = new long[count]; for (int i = 0; i < count; i++) l[i] = data.get(i) & 0xff; yield new Array(shape, descr, null, null, l); }
            default -> { long[] l = new long[count]; data.asLongBuffer().get(l); yield new Array(shape, descr, null, null, l); }
        };
    }

    /** The dims of a header's shape tuple, e.g. "2, 3" or "4," or "". */
    private static long[] shape(String dims, Path file) throws IOException {
        String[] parts = dims.trim().isEmpty() ? new String[0] : dims.split(",", -1);
        long[] shape = new long[parts.length];
        int rank = 0;
        for (int i = 0; i < parts.length; i++) {
            String p = parts[i].trim();
            if (p.isEmpty() && i == parts.length - 1 && i > 0) break; // the trailing comma of "(4,)"
            if (!p.matches("[0-9]{1,18}")) throw new IOException(file + ": .npy header has a bad shape (" + dims + ")");
            shape[rank++] = Long.parseLong(p);
        }
        return Arrays.copyOf(shape, rank);
    }

    public static Tensor readTensor(Path file) throws IOException {
        return read(file).toTensor();
    }

    /** Writes float32 data atomically. */
    public static void writeFloats(Path file, float[] data, long... shape) throws IOException {
        if (data.length != Ops.numel(shape)) throw new IllegalArgumentException("data does not fill shape " + Arrays.toString(shape));
        ByteBuffer body = ByteBuffer.allocate(data.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        body.asFloatBuffer().put(data);
        AtomicFiles.write(file, concat(header("<f4", shape), body.array()));
    }

    public static void writeTensor(Path file, Tensor t) throws IOException {
        writeFloats(file, Ops.toFloats(t), Ops.shape(t));
    }

    private static byte[] header(String descr, long[] shape) {
        StringBuilder dims = new StringBuilder();
        for (long d : shape) dims.append(d).append(", ");
        String shapeText = shape.length == 1 ? "(" + shape[0] + ",)" : "(" + (dims.length() > 0 ? dims.substring(0, dims.length() - 2) : "") + ")";
        String dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shapeText + ", }";
        int total = 10 + dict.length() + 1;
        int padding = (64 - total % 64) % 64;
        String header = dict + " ".repeat(padding) + "\n";
        ByteBuffer b = ByteBuffer.allocate(10 + header.length()).order(ByteOrder.LITTLE_ENDIAN);
        b.put((byte) 0x93).put("NUMPY".getBytes(StandardCharsets.US_ASCII)).put((byte) 1).put((byte) 0);
        b.putShort((short) header.length()).put(header.getBytes(StandardCharsets.US_ASCII));
        return b.array();
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private static String find(Pattern p, String header, Path file, String what) throws IOException {
        Matcher m = p.matcher(header);
        if (!m.find()) {
            String shown = header.strip();
            throw new IOException(file + ": .npy header has no " + what + ": "
                    + (shown.length() > 200 ? shown.substring(0, 200) + "..." : shown));
        }
        return m.group(1);
    }
}
