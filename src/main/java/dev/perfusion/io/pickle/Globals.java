package dev.perfusion.io.pickle;

import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The allow-list: the only globals a checkpoint may name, and what "calling" each one means here. None of them
 * runs Python: each is a decoder of the data it is given (a tensor from a storage, offset, shape and strides; an
 * ordered dict; a numpy scalar from its bytes), written in Java. Any other global is refused when it is named,
 * before anything is built from it.
 */
public final class Globals {
    private Globals() {}

    /** What a global is. */
    public enum Kind {
        /** {@code collections.OrderedDict}: an empty dict (filled by SETITEMS), or one from a list of pairs. */
        ORDERED_DICT,
        /** {@code torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])}. */
        REBUILD_TENSOR_V2,
        /** {@code torch._utils._rebuild_tensor(storage, offset, size, stride)} (older files). */
        REBUILD_TENSOR,
        /** {@code torch._utils._rebuild_parameter(data, requires_grad, hooks)}: an nn.Parameter is its tensor. */
        REBUILD_PARAMETER,
        /** {@code torch._utils._rebuild_parameter_with_state(data, requires_grad, hooks, state)}. */
        REBUILD_PARAMETER_WITH_STATE,
        /** {@code torch._tensor._rebuild_from_type_v2(func, type, args, state)}: a tensor (sub)class rebuilt by func. */
        REBUILD_FROM_TYPE_V2,
        /** {@code torch.FloatStorage} and the other storage classes: only named in persistent ids. */
        STORAGE_TYPE,
        /** {@code torch.Size(tuple)}: a tuple. */
        TORCH_SIZE,
        /** {@code _codecs.encode(str, 'latin1')}: how protocol 2 writes bytes. */
        CODECS_ENCODE,
        /** {@code numpy.dtype(descr, align, copy)}, then its state set by BUILD. */
        NUMPY_DTYPE,
        /** {@code numpy.core.multiarray.scalar(dtype, bytes)}: one number. */
        NUMPY_SCALAR,
        /** {@code builtins.set(iterable)}. */
        SET,
        /** {@code builtins.frozenset(iterable)}. */
        FROZENSET,
        /** A class named only as a value (a tensor type, lightning's ModelCheckpoint as a dict key); never called. */
        NAME_ONLY
    }

    private static final Map<String, Kind> ALLOWED = new LinkedHashMap<>();

    static {
        ALLOWED.put("collections.OrderedDict", Kind.ORDERED_DICT);
        ALLOWED.put("torch._utils._rebuild_tensor_v2", Kind.REBUILD_TENSOR_V2);
        ALLOWED.put("torch._utils._rebuild_tensor", Kind.REBUILD_TENSOR);
        ALLOWED.put("torch._utils._rebuild_parameter", Kind.REBUILD_PARAMETER);
        ALLOWED.put("torch._utils._rebuild_parameter_with_state", Kind.REBUILD_PARAMETER_WITH_STATE);
        ALLOWED.put("torch._tensor._rebuild_from_type_v2", Kind.REBUILD_FROM_TYPE_V2);
        for (StorageType t : StorageType.values()) ALLOWED.put("torch." + t.className, Kind.STORAGE_TYPE);
        ALLOWED.put("torch.Size", Kind.TORCH_SIZE);
        ALLOWED.put("_codecs.encode", Kind.CODECS_ENCODE);
        ALLOWED.put("numpy.dtype", Kind.NUMPY_DTYPE);
        ALLOWED.put("numpy.core.multiarray.scalar", Kind.NUMPY_SCALAR);
        ALLOWED.put("numpy._core.multiarray.scalar", Kind.NUMPY_SCALAR);
        for (String builtins : List.of("builtins", "__builtin__")) {
            ALLOWED.put(builtins + ".set", Kind.SET);
            ALLOWED.put(builtins + ".frozenset", Kind.FROZENSET);
        }
        ALLOWED.put("torch.Tensor", Kind.NAME_ONLY);
        ALLOWED.put("torch.nn.parameter.Parameter", Kind.NAME_ONLY);
        ALLOWED.put("pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint", Kind.NAME_ONLY);
        ALLOWED.put("lightning.pytorch.callbacks.model_checkpoint.ModelCheckpoint", Kind.NAME_ONLY);
    }

    /** The global {@code module.name}, if the allow-list admits it. */
    static Optional<Py.Name> lookup(String module, String name) {
        String qualified = module + "." + name;
        Kind kind = ALLOWED.get(qualified);
        return kind == null ? Optional.empty() : Optional.of(new Py.Name(qualified, kind));
    }

    /** Every admitted global, for messages and documentation. */
    public static Set<String> allowed() {
        return java.util.Collections.unmodifiableSet(ALLOWED.keySet());
    }

    /** A refusal of a call, as the unpickler reports it (it adds the file and the byte). */
    static final class Refused extends Exception {
        Refused(String message) {
            super(message);
        }
    }

    /** What REDUCE makes of {@code callable(*args)}. */
    static Object call(Py.Name callable, Py.Tuple args) throws Refused {
        List<Object> a = args.items();
        return switch (callable.kind()) {
            case ORDERED_DICT -> orderedDict(callable, a);
            case REBUILD_TENSOR_V2 -> {
                if (a.size() < 6 || a.size() > 7) throw arity(callable, "6 or 7", a);
                yield tensor(callable, a);
            }
            case REBUILD_TENSOR -> {
                if (a.size() != 4) throw arity(callable, "4", a);
                yield tensor(callable, a);
            }
            case REBUILD_PARAMETER, REBUILD_PARAMETER_WITH_STATE -> {
                int n = callable.kind() == Kind.REBUILD_PARAMETER ? 3 : 4;
                if (a.size() != n) throw arity(callable, Integer.toString(n), a);
                if (!(a.get(0) instanceof Py.TensorRef t)) throw argument(callable, "data", "a tensor", a.get(0));
                yield t;
            }
            case REBUILD_FROM_TYPE_V2 -> {
                if (a.size() != 4) throw arity(callable, "4", a);
                if (!(a.get(0) instanceof Py.Name f) || (f.kind() != Kind.REBUILD_TENSOR_V2 && f.kind() != Kind.REBUILD_TENSOR)) {
                    throw argument(callable, "func", "torch._utils._rebuild_tensor_v2", a.get(0));
                }
                if (!(a.get(1) instanceof Py.Name type) || type.kind() != Kind.NAME_ONLY || !type.qualified().startsWith("torch.")) {
                    throw argument(callable, "new_type", "torch.Tensor or torch.nn.parameter.Parameter", a.get(1));
                }
                if (!(a.get(2) instanceof Py.Tuple inner)) throw argument(callable, "args", "a tuple", a.get(2));
                yield call(f, inner);
            }
            case TORCH_SIZE -> {
                if (a.size() != 1 || !(a.get(0) instanceof Py.Tuple dims)) throw argument(callable, "sizes", "a tuple", a.isEmpty() ? null : a.get(0));
                yield dims;
            }
            case CODECS_ENCODE -> encode(callable, a);
            case NUMPY_DTYPE -> {
                if (a.isEmpty() || !(a.get(0) instanceof String descr)) throw argument(callable, "dtype", "a type code", a.isEmpty() ? null : a.get(0));
                yield new Py.NumpyDtype(descr, '|');
            }
            case NUMPY_SCALAR -> numpyScalar(callable, a);
            case SET -> new LinkedHashSet<>(items(callable, a));
            case FROZENSET -> {
                Set<Object> items = new LinkedHashSet<>(items(callable, a));
                int depth = 1 + items.stream().mapToInt(Py::depthOf).max().orElse(0);
                // a list between levels hides them from the argument tuple's depth; hashing recurses through them
                if (depth > Py.MAX_DEPTH) throw new Refused("frozensets nested more than " + Py.MAX_DEPTH + " deep: not a checkpoint");
                yield new Py.FrozenSet(java.util.Collections.unmodifiableSet(items), depth);
            }
            case STORAGE_TYPE, NAME_ONLY -> throw new Refused("the pickle calls " + callable.qualified()
                    + ", which a checkpoint may only name, never call");
        };
    }

    /** BUILD (set an object's state): only a numpy dtype's, whose state holds its byte order. */
    static Object build(Object target, Object state) throws Refused {
        if (target instanceof Py.NumpyDtype d && state instanceof Py.Tuple t && t.size() >= 2 && t.get(1) instanceof String order
                && order.length() == 1) {
            return new Py.NumpyDtype(d.descr(), order.charAt(0));
        }
        throw new Refused("the pickle sets the state of " + Py.describe(target) + " (opcode BUILD), which only a numpy"
                + " dtype may have here");
    }

    private static Map<Object, Object> orderedDict(Py.Name callable, List<Object> a) throws Refused {
        Map<Object, Object> dict = new LinkedHashMap<>();
        if (a.isEmpty()) return dict;
        for (Object pair : items(callable, a)) {
            List<Object> kv = pair instanceof Py.Tuple t ? t.items() : pair instanceof List<?> l ? new ArrayList<>(l) : null;
            if (kv == null || kv.size() != 2) throw argument(callable, "items", "key-value pairs", pair);
            if (!Py.hashable(kv.get(0))) throw new Refused("a dict key is " + Py.describe(kv.get(0)) + ", which is unhashable");
            dict.put(kv.get(0), kv.get(1));
        }
        return dict;
    }

    private static Collection<Object> items(Py.Name callable, List<Object> a) throws Refused {
        if (a.isEmpty()) return List.of();
        if (a.size() != 1) throw arity(callable, "0 or 1", a);
        Object it = a.get(0);
        Collection<Object> items;
        if (it instanceof Py.Tuple t) items = t.items();
        else if (it instanceof List<?> l) items = new ArrayList<>(l);
        else if (it instanceof Set<?> s) items = new ArrayList<>(s);
        else throw argument(callable, "iterable", "a list or tuple", it);
        if (callable.kind() == Kind.SET || callable.kind() == Kind.FROZENSET) {
            for (Object o : items) if (!Py.hashable(o)) throw new Refused("a set member is " + Py.describe(o) + ", which is unhashable");
        }
        return items;
    }

    /** The most elements a view may hold beyond its storage's (an expanded buffer); 4 MB of float32. */
    static final long MAX_BROADCAST_ELEMENTS = 1L << 20;

    /** A tensor view: the storage, element offset, shape and strides, checked to lie inside the storage. */
    private static Py.TensorRef tensor(Py.Name callable, List<Object> a) throws Refused {
        if (!(a.get(0) instanceof Py.Storage storage)) throw argument(callable, "storage", "a storage (persistent id)", a.get(0));
        long offset = nonNegative(callable, "storage_offset", a.get(1));
        long[] shape = longs(callable, "size", a.get(2));
        long[] stride = longs(callable, "stride", a.get(3));
        if (shape.length != stride.length) {
            throw new Refused(callable.qualified() + ": size has " + shape.length + " dimensions but stride " + stride.length);
        }
        long extent = 0;
        boolean empty = false;
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] == 0) empty = true;
        }
        try {
            long numel = 1;
            for (long d : shape) numel = Math.multiplyExact(numel, d);
            if (!empty) {
                long last = 0;
                for (int i = 0; i < shape.length; i++) last = Math.addExact(last, Math.multiplyExact(shape[i] - 1, stride[i]));
                extent = Math.addExact(last, 1);
            }
            // a view may repeat its storage's elements (stride 0); copied out it holds all of them, so a tiny file
            // could ask for terabytes: more than the storage holds is allowed only up to a small buffer's size
            if (!empty && numel > Math.max(storage.numel(), MAX_BROADCAST_ELEMENTS)) {
                throw new Refused("a tensor of size " + java.util.Arrays.toString(shape) + ", stride " + java.util.Arrays.toString(stride)
                        + " holds " + numel + " elements, more than its storage '" + storage.key() + "' (" + storage.numel()
                        + "): a view that repeats its storage's elements is read only up to " + MAX_BROADCAST_ELEMENTS + " elements");
            }
            if (!empty && Math.addExact(offset, extent) > storage.numel()) {
                throw new Refused("a tensor of size " + java.util.Arrays.toString(shape) + ", stride "
                        + java.util.Arrays.toString(stride) + " at offset " + offset + " reaches element " + (offset + extent)
                        + " of storage '" + storage.key() + "', which holds " + storage.numel());
            }
        } catch (ArithmeticException e) {
            throw new Refused("a tensor of size " + java.util.Arrays.toString(shape) + ", stride "
                    + java.util.Arrays.toString(stride) + " has more elements than a long can count");
        }
        return new Py.TensorRef(storage, offset, shape, stride);
    }

    private static long[] longs(Py.Name callable, String what, Object o) throws Refused {
        if (!(o instanceof Py.Tuple t)) throw argument(callable, what, "a tuple of ints", o);
        long[] out = new long[t.size()];
        for (int i = 0; i < out.length; i++) out[i] = nonNegative(callable, what, t.get(i));
        return out;
    }

    private static long nonNegative(Py.Name callable, String what, Object o) throws Refused {
        if (!(o instanceof Long v) || v < 0) throw argument(callable, what, "a non-negative int", o);
        return v;
    }

    private static Py.Bytes encode(Py.Name callable, List<Object> a) throws Refused {
        if (a.size() != 2 || !(a.get(0) instanceof String s) || !(a.get(1) instanceof String encoding)) {
            throw arity(callable, "2 (str, encoding)", a);
        }
        if (!encoding.equals("latin1") && !encoding.equals("latin-1")) {
            throw new Refused(callable.qualified() + ": encoding '" + encoding + "' (only latin1, as protocol 2 writes bytes)");
        }
        byte[] out = new byte[s.length()];
        for (int i = 0; i < out.length; i++) {
            char c = s.charAt(i);
            if (c > 0xff) throw new Refused(callable.qualified() + ": a character beyond latin1 at index " + i);
            out[i] = (byte) c;
        }
        return new Py.Bytes(out);
    }

    private static Object numpyScalar(Py.Name callable, List<Object> a) throws Refused {
        if (a.size() != 2 || !(a.get(0) instanceof Py.NumpyDtype d) || !(a.get(1) instanceof Py.Bytes b)) {
            throw arity(callable, "2 (dtype, bytes)", a);
        }
        String code = d.descr().replaceAll("^[<>=|]", "");
        ByteBuffer v = ByteBuffer.wrap(b.value()).order(d.byteOrder() == '>' ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN);
        int size = switch (code) {
            case "f8", "i8", "u8" -> 8;
            case "f4", "i4", "u4" -> 4;
            case "f2", "i2", "u2" -> 2;
            case "i1", "u1", "b1" -> 1;
            default -> throw new Refused(callable.qualified() + ": numpy dtype '" + d.descr() + "' is not a plain number");
        };
        if (b.value().length != size) {
            throw new Refused(callable.qualified() + ": a " + code + " scalar needs " + size + " bytes, got " + b.value().length);
        }
        return switch (code) {
            case "f8" -> v.getDouble();
            case "f4" -> (double) v.getFloat();
            case "f2" -> (double) dev.perfusion.io.Float16.toFloat(v.getShort());
            case "i8" -> v.getLong();
            case "u8" -> {
                long x = v.getLong();
                yield x >= 0 ? (Object) x : new BigInteger(Long.toUnsignedString(x));
            }
            case "i4" -> (long) v.getInt();
            case "u4" -> v.getInt() & 0xffffffffL;
            case "i2" -> (long) v.getShort();
            case "u2" -> (long) (v.getShort() & 0xffff);
            case "i1" -> (long) v.get();
            case "u1" -> (long) (v.get() & 0xff);
            default -> v.get() != 0;
        };
    }

    private static Refused arity(Py.Name callable, String expected, List<Object> a) {
        return new Refused(callable.qualified() + " is called with " + a.size() + " arguments, expected " + expected);
    }

    private static Refused argument(Py.Name callable, String what, String expected, Object got) {
        return new Refused(callable.qualified() + ": argument " + what + " is " + (got == null ? "missing" : Py.describe(got))
                + ", expected " + expected);
    }

    /** The UTF-8 bytes of a string, for messages that quote a global's name safely. */
    static String printable(String s) {
        StringBuilder out = new StringBuilder();
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
            if (out.length() > 100) return out.append("...").toString();
            out.append(b >= 0x20 && b < 0x7f ? String.valueOf((char) b) : String.format("\\x%02x", b & 0xff));
        }
        return out.toString();
    }
}
