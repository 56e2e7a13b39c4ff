package dev.perfusion.io.pickle;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * Pickle bytes opcode by opcode, for tests: what torch.save writes (protocol 2) and the variants and hostile streams
 * the reader must meet. Each method appends one opcode with its argument.
 */
public final class PickleWriter {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    public PickleWriter op(int opcode) {
        out.write(opcode);
        return this;
    }

    public PickleWriter raw(byte[] bytes) {
        out.writeBytes(bytes);
        return this;
    }

    public PickleWriter proto(int protocol) { return op(0x80).op(protocol); }

    public PickleWriter mark() { return op('('); }

    public PickleWriter stop() { return op('.'); }

    /** The smallest integer opcode that holds {@code v}, as pickle does. */
    public PickleWriter integer(long v) {
        if (v >= 0 && v < 256) return op('K').op((int) v);
        if (v >= 0 && v < 65536) return op('M').raw(le(v, 2));
        if (v >= Integer.MIN_VALUE && v <= Integer.MAX_VALUE) return op('J').raw(le(v, 4));
        return op(0x8a).op(8).raw(le(v, 8));
    }

    /** BINUNICODE. */
    public PickleWriter str(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        return op('X').raw(le(b.length, 4)).raw(b);
    }

    /** SHORT_BINUNICODE (protocol 4). */
    public PickleWriter shortStr(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        return op(0x8c).op(b.length).raw(b);
    }

    /** GLOBAL (protocols 0-3). */
    public PickleWriter global(String module, String name) {
        return op('c').raw((module + "\n" + name + "\n").getBytes(StandardCharsets.US_ASCII));
    }

    /** STACK_GLOBAL with the module and name as short strings (protocol 4). */
    public PickleWriter stackGlobal(String module, String name) {
        return shortStr(module).shortStr(name).op(0x93);
    }

    public PickleWriter binput(int i) { return op('q').op(i); }

    public PickleWriter binget(int i) { return op('h').op(i); }

    /** A tuple of ints with TUPLE (any length). */
    public PickleWriter ints(long... values) {
        if (values.length == 0) return op(')');
        mark();
        for (long v : values) integer(v);
        return op('t');
    }

    public byte[] bytes() { return out.toByteArray(); }

    static byte[] le(long v, int n) {
        ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v);
        byte[] out = new byte[n];
        System.arraycopy(b.array(), 0, out, 0, n);
        return out;
    }
}
