package dev.perfusion.io.pickle;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * The bytes of a pickle stream: a buffer (a mapped window of the file, or an inflated zip entry) read front to back,
 * with positions reported as offsets in the file (or entry) for error messages. Every read is checked against what is
 * left, so a declared length never allocates more than the input holds.
 */
final class PickleInput {
    private final ByteBuffer buffer;
    private final long base;
    private final String where;
    /** Whether the buffer ends before the input does (a window of a larger file): running out is then a size limit. */
    private final boolean window;

    /** {@code where}: the file (and entry) for messages; {@code base}: the file offset of the buffer's first byte. */
    PickleInput(ByteBuffer buffer, long base, String where, boolean window) {
        this.buffer = buffer.slice().order(ByteOrder.LITTLE_ENDIAN);
        this.base = base;
        this.where = where;
        this.window = window;
    }

    String where() { return where; }

    /** The offset of the next byte in the file or entry. */
    long position() { return base + buffer.position(); }

    long remaining() { return buffer.remaining(); }

    private void need(long n, String what) throws PickleException {
        if (n < 0 || n > buffer.remaining()) {
            throw new PickleException(where + ": " + what + " at byte " + position() + " needs " + n + " bytes but "
                    + (window ? "the pickle is over the " + buffer.limit() + "-byte limit for a checkpoint's pickle"
                    : "only " + buffer.remaining() + " are left (truncated or corrupt pickle)"));
        }
    }

    int u8(String what) throws PickleException {
        need(1, what);
        return buffer.get() & 0xff;
    }

    int u16(String what) throws PickleException {
        need(2, what);
        return buffer.getShort() & 0xffff;
    }

    int i32(String what) throws PickleException {
        need(4, what);
        return buffer.getInt();
    }

    long u32(String what) throws PickleException {
        return i32(what) & 0xffffffffL;
    }

    long i64(String what) throws PickleException {
        need(8, what);
        return buffer.getLong();
    }

    double f64BigEndian(String what) throws PickleException {
        need(8, what);
        return Double.longBitsToDouble(Long.reverseBytes(buffer.getLong()));
    }

    byte[] bytes(long n, String what) throws PickleException {
        need(n, what);
        byte[] out = new byte[(int) n];
        buffer.get(out);
        return out;
    }

    /** A newline-terminated text argument (protocol 0 opcodes, GLOBAL's module and name), at most {@code max} bytes. */
    String line(int max, String what) throws PickleException {
        long start = position();
        int from = buffer.position();
        for (int i = from; i < buffer.limit() && i - from <= max; i++) {
            if (buffer.get(i) == '\n') {
                byte[] text = new byte[i - from];
                buffer.get(text);
                buffer.get();
                return new String(text, StandardCharsets.ISO_8859_1);
            }
        }
        throw new PickleException(where + ": " + what + " at byte " + start + " has no end of line within " + max
                + " bytes (corrupt pickle)");
    }
}
