package dev.perfusion.io.pickle;

import dev.perfusion.tensor.Ops;

import java.math.BigInteger;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The values the restricted unpickler builds: Python's plain data as Java values, and the few torch objects a
 * checkpoint holds as records. {@code str} is a {@link String}, {@code int} a {@link Long} (a {@link BigInteger}
 * beyond 64 bits), {@code float} a {@link Double}, {@code bool} a {@link Boolean}, {@code list} an
 * {@link java.util.ArrayList}, {@code dict} a {@link java.util.LinkedHashMap} in insertion order, {@code set} a
 * {@link java.util.LinkedHashSet}; the rest are the records below. Nothing here holds code.
 */
public final class Py {
    private Py() {}

    /** Python's None. */
    public enum None { NONE }

    /** Beyond this nesting of tuples a pickle is refused (hashing and printing them recurse). */
    static final int MAX_DEPTH = 100;

    /**
     * A tuple; {@code depth} is its nesting (1 for a tuple of plain values), {@code nodes} the values hashing or
     * comparing it visits, counting a tuple the memo repeats each time it appears ({@link #weight}).
     */
    public record Tuple(List<Object> items, int depth, long nodes) {
        public Tuple(List<Object> items, int depth) {
            this(items, depth, nodesOf(items));
        }

        public int size() { return items.size(); }

        public Object get(int i) { return items.get(i); }
    }

    /** A frozenset (hashable, so it may be a dict key); {@code nodes} as for {@link Tuple}. */
    public record FrozenSet(Set<Object> items, int depth, long nodes) {
        public FrozenSet(Set<Object> items, int depth) {
            this(items, depth, nodesOf(items));
        }
    }

    /** {@code bytes}, compared by content. */
    public record Bytes(byte[] value) {
        @Override public boolean equals(Object o) { return o instanceof Bytes b && Arrays.equals(value, b.value); }

        @Override public int hashCode() { return Arrays.hashCode(value); }

        @Override public String toString() { return "bytes[" + value.length + "]"; }
    }

    /** A global the pickle named and the allow-list admits ({@link Globals}); naming it runs nothing. */
    public record Name(String qualified, Globals.Kind kind) {
        @Override public String toString() { return qualified; }
    }

    /** A numpy dtype (for numpy scalars, which lightning checkpoints hold): its type code and byte order. */
    public record NumpyDtype(String descr, char byteOrder) {}

    /**
     * A storage the pickle refers to by persistent id: where its bytes are is the container's business.
     *
     * @param key           the storage's name in the container (zip: {@code data/<key>}; legacy: its listing)
     * @param numel         elements the pickle says it holds
     * @param elementOffset where it starts in its root storage (legacy storage views; 0 otherwise)
     */
    public record Storage(String key, StorageType type, long numel, String location, long elementOffset) {}

    /** A tensor: a strided view of a storage, as {@code torch._utils._rebuild_tensor_v2} builds one. */
    public record TensorRef(Storage storage, long offset, long[] shape, long[] stride) {
        /** Elements of the storage the view reaches, from its offset: 0 for an empty tensor. */
        public long extent() {
            long last = 0;
            for (int i = 0; i < shape.length; i++) {
                if (shape[i] == 0) return 0;
                last += (shape[i] - 1) * stride[i];
            }
            return last + 1;
        }

        public long numel() {
            return Ops.numel(shape);
        }
    }

    /**
     * About how many steps hashing or comparing {@code o} takes: a tuple's or frozenset's values counted with
     * repeats (a tuple of the same tuple twice, 60 levels deep, is 200 bytes of pickle and 2^60 values to hash), a
     * byte string's or big int's length in words, 1 for anything else (a str caches its hash). Saturates.
     */
    static long weight(Object o) {
        if (o instanceof Tuple t) return t.nodes();
        if (o instanceof FrozenSet f) return f.nodes();
        if (o instanceof Bytes b) return 1 + b.value().length / 8;
        if (o instanceof BigInteger v) return 1 + v.bitLength() / 64;
        return 1;
    }

    private static final long SATURATED = Long.MAX_VALUE / 4;

    private static long nodesOf(Collection<Object> items) {
        long n = 1;
        for (Object o : items) n = Math.min(SATURATED, n + weight(o));
        return n;
    }

    /** The nesting of a tuple or frozenset item (0 for anything else). */
    static int depthOf(Object o) {
        if (o instanceof Tuple t) return t.depth();
        if (o instanceof FrozenSet f) return f.depth();
        return 0;
    }

    /** Whether Python would accept {@code o} as a dict key or set member (immutable values only). */
    static boolean hashable(Object o) {
        if (o instanceof String || o instanceof Long || o instanceof BigInteger || o instanceof Double || o instanceof Boolean
                || o instanceof None || o instanceof Bytes || o instanceof Name) {
            return true;
        }
        if (o instanceof Tuple t) return t.items().stream().allMatch(Py::hashable);
        return o instanceof FrozenSet;
    }

    /** A short description of a value for messages: its Python type, and a string's or number's value. */
    public static String describe(Object o) {
        if (o instanceof String s) return "str '" + (s.length() > 60 ? s.substring(0, 57) + "..." : s) + "'";
        if (o instanceof Long || o instanceof BigInteger) return "int " + o;
        if (o instanceof Double) return "float " + o;
        if (o instanceof Boolean b) return b ? "True" : "False";
        if (o instanceof None) return "None";
        if (o instanceof Tuple t) return "a tuple of " + t.size();
        if (o instanceof Map<?, ?> m) return "a dict of " + m.size();
        if (o instanceof List<?> l) return "a list of " + l.size();
        if (o instanceof Collection<?> c) return "a set of " + c.size();
        if (o instanceof FrozenSet f) return "a frozenset of " + f.items().size();
        if (o instanceof Bytes b) return "bytes of length " + b.value().length;
        if (o instanceof Name n) return "the global " + n.qualified();
        if (o instanceof TensorRef t) return "a tensor " + Arrays.toString(t.shape()) + " of " + t.storage().type().code;
        if (o instanceof Storage s) return "a storage of " + s.numel() + " " + s.type().code;
        if (o instanceof NumpyDtype d) return "numpy dtype " + d.descr();
        return o.getClass().getSimpleName();
    }
}
