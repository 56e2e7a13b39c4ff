package dev.perfusion.io.pickle;

import dev.perfusion.io.FileTensors;
import dev.perfusion.io.StateDict;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * A PyTorch checkpoint ({@code torch.save}: .ckpt, .pt, .pth, .bin) read without running it: its pickle goes through
 * the restricted {@link Unpickler}, and its tensors are views of storages located when the file is opened and read
 * one tensor at a time, straight into tensor memory ({@link FileTensors}, as {@link dev.perfusion.io.Safetensors}
 * reads), so a multi-gigabyte file is never held in memory. Two containers exist:
 * <ul>
 * <li>the zip format (torch 1.6 and later): {@code <name>/data.pkl} (the pickle), {@code <name>/data/<key>} (one
 * uncompressed member per storage), {@code <name>/byteorder}, {@code <name>/version};</li>
 * <li>the legacy format: five pickles in a row (a magic number, the protocol version 1001, the system's byte order
 * and type sizes, the object, the list of storage keys), then each storage listed as an 8-byte element count and its
 * raw bytes.</li>
 * </ul>
 * The weights are the dict under {@code state_dict} when there is one (Lightning checkpoints: SD 1.x .ckpt files,
 * with {@code global_step} and more beside it), else the top-level dict (a plain state dict, as diffusers' .bin
 * files); nested dicts are flattened with dots. Other top-level numbers and strings are kept as {@link #info()}.
 */
public final class TorchCheckpoint implements StateDict {
    /** Largest pickle (data.pkl, or the legacy file's leading pickles) read; an SD checkpoint's is well under 1 MB. */
    static final int MAX_PICKLE = 64 << 20;
    private static final BigInteger LEGACY_MAGIC = new BigInteger("1950a86a20f9469cfc6c", 16);
    private static final int NESTING = 16;

    /** How the file is laid out. */
    public enum Format {
        ZIP("PyTorch zip checkpoint"), LEGACY("PyTorch legacy (non-zip) checkpoint");

        public final String description;

        Format(String description) { this.description = description; }
    }

    private final Path file;
    private final Format format;
    private final Map<String, Py.TensorRef> tensors;
    /** Storage key → file offset of its first byte. */
    private final Map<String, Long> storageData;
    private final Map<String, String> info;
    private final String weightsAt;

    private TorchCheckpoint(Path file, Format format, Map<String, Py.TensorRef> tensors, Map<String, Long> storageData,
                            Map<String, String> info, String weightsAt) {
        this.file = file;
        this.format = format;
        this.tensors = Collections.unmodifiableMap(tensors);
        this.storageData = storageData;
        this.info = Collections.unmodifiableMap(info);
        this.weightsAt = weightsAt;
    }

    /** Whether the file starts as torch.save writes: a zip archive, or a pickle (protocol 2 or later). */
    public static boolean looksLike(Path file) throws IOException {
        byte[] head = new byte[4];
        int n;
        try (InputStream in = Files.newInputStream(file)) {
            n = in.readNBytes(head, 0, head.length);
        }
        return ZipDirectory.isZip(head, n) || (n >= 2 && (head[0] & 0xff) == 0x80 && head[1] >= 2 && head[1] <= 5);
    }

    /** Reads the pickle and locates every storage; reads no tensor data. */
    public static TorchCheckpoint open(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new NoSuchFileException(file + ": no such file");
        }
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer head = ByteBuffer.allocate(4);
            ch.read(head, 0);
            if (ZipDirectory.isZip(head.array(), head.position())) return openZip(file, ch);
            if (head.position() >= 1 && (head.get(0) & 0xff) == 0x80) return openLegacy(file, ch);
            if (head.position() == 0) throw new PickleException(file + ": not a PyTorch checkpoint: the file is empty");
            throw new PickleException(file + ": not a PyTorch checkpoint: it is neither a zip archive nor a pickle"
                    + " (the first bytes are " + hex(head) + ")");
        }
    }

    // ---- the zip format -------------------------------------------------------------------------

    private static TorchCheckpoint openZip(Path file, FileChannel ch) throws IOException {
        Map<String, ZipDirectory.Entry> entries = ZipDirectory.read(ch, file);
        List<String> pickles = entries.keySet().stream()
                .filter(n -> n.endsWith("/data.pkl") && n.indexOf('/') == n.length() - "/data.pkl".length()).toList();
        if (pickles.size() != 1) {
            throw new PickleException(file + ": a zip archive with " + (pickles.isEmpty() ? "no" : pickles.size())
                    + " <name>/data.pkl members: not a torch.save checkpoint"
                    + (pickles.isEmpty() ? "" : " (" + String.join(", ", pickles.subList(0, Math.min(3, pickles.size()))) + ")"));
        }
        String prefix = pickles.get(0).substring(0, pickles.get(0).length() - "data.pkl".length());
        ZipDirectory.Entry byteOrder = entries.get(prefix + "byteorder");
        if (byteOrder != null) {
            String order = new String(small(ch, file, byteOrder, 16), StandardCharsets.US_ASCII).trim();
            if (order.equals("big")) {
                throw new PickleException(file + ": a big-endian checkpoint (byteorder 'big'), which is not supported");
            }
            if (!order.equals("little")) throw new PickleException(file + ": " + prefix + "byteorder says '" + Globals.printable(order) + "'");
        }
        ZipDirectory.Entry pkl = entries.get(pickles.get(0));
        String where = file + ": " + pkl.name();
        PickleInput input = new PickleInput(pickleBytes(ch, where, pkl), 0, where, false);
        Map<String, Py.Storage> storages = new LinkedHashMap<>();
        Map<String, Long> data = new LinkedHashMap<>();
        Object root = Unpickler.load(input, pid -> {
            Py.Storage s = storage(pid, 5, where);
            Py.Storage known = storages.putIfAbsent(s.key(), s);
            if (known != null) return sameStorage(known, s, where);
            ZipDirectory.Entry member = entries.get(prefix + "data/" + s.key());
            if (member == null) throw new PickleException(where + ": storage '" + s.key() + "' has no member " + prefix + "data/" + s.key());
            if (member.method() != ZipDirectory.STORED) {
                throw new PickleException(file + ": storage member " + member.name() + " is compressed (method " + member.method()
                        + "); torch.save stores storages uncompressed, and only such are read");
            }
            long bytes = bytes(s, where);
            if (member.size() != bytes) {
                throw new PickleException(file + ": storage member " + member.name() + " holds " + member.size()
                        + " bytes, but the pickle declares " + s.numel() + " elements of " + s.type().code + " ("
                        + bytes + " bytes)" + (member.size() < bytes ? " (truncated or corrupt file)" : ""));
            }
            data.put(s.key(), member.dataOffset());
            return s;
        });
        return of(file, Format.ZIP, root, data, where);
    }

    /** The pickle member's bytes: mapped when stored, inflated (bounded) when deflated. */
    private static ByteBuffer pickleBytes(FileChannel ch, String where, ZipDirectory.Entry pkl) throws IOException {
        if (pkl.size() > MAX_PICKLE) {
            throw new PickleException(where + ": a pickle of " + pkl.size() + " bytes (over the " + MAX_PICKLE
                    + "-byte limit; a checkpoint's pickle is well under 1 MB)");
        }
        if (pkl.method() == ZipDirectory.STORED) return ch.map(FileChannel.MapMode.READ_ONLY, pkl.dataOffset(), pkl.size());
        if (pkl.method() != ZipDirectory.DEFLATED) throw new PickleException(where + ": compression method " + pkl.method() + " is not supported");
        return ByteBuffer.wrap(inflate(ch, where, pkl, (int) pkl.size()));
    }

    /**
     * A deflated member, inflated into exactly the size the directory declares (at most {@link #MAX_PICKLE}): a
     * member that inflates to more (a zip bomb) is refused as soon as it passes that size.
     */
    private static byte[] inflate(FileChannel ch, String where, ZipDirectory.Entry e, int size) throws IOException {
        byte[] out = new byte[size];
        Inflater inflater = new Inflater(true);
        try {
            ByteBuffer in = ByteBuffer.allocate(1 << 16);
            long read = 0;
            int produced = 0;
            byte[] probe = new byte[1];
            while (!inflater.finished()) {
                if (inflater.needsInput()) {
                    if (read >= e.compressedSize()) break;
                    in.clear().limit((int) Math.min(in.capacity(), e.compressedSize() - read));
                    int n = ch.read(in, e.dataOffset() + read);
                    if (n <= 0) break;
                    read += n;
                    inflater.setInput(in.array(), 0, n);
                }
                int n = produced < size ? inflater.inflate(out, produced, size - produced) : inflater.inflate(probe);
                if (produced >= size && n > 0) {
                    throw new PickleException(where + ": inflates to more than the " + size + " bytes its directory"
                            + " entry declares (a zip bomb or a corrupt file)");
                }
                produced += n;
                if (n == 0 && inflater.needsDictionary()) throw new PickleException(where + ": needs a preset dictionary");
            }
            if (produced != size) {
                throw new PickleException(where + ": inflates to " + produced + " bytes, not the " + size + " its directory entry declares");
            }
            return out;
        } catch (DataFormatException ex) {
            throw new PickleException(where + ": corrupt deflate data: " + ex.getMessage());
        } finally {
            inflater.end();
        }
    }

    private static byte[] small(FileChannel ch, Path file, ZipDirectory.Entry e, int max) throws IOException {
        if (e.size() > max) throw new PickleException(file + ": " + e.name() + " holds " + e.size() + " bytes, expected at most " + max);
        if (e.method() == ZipDirectory.DEFLATED) return inflate(ch, file + ": " + e.name(), e, (int) e.size());
        ByteBuffer b = ByteBuffer.allocate((int) e.size());
        while (b.hasRemaining()) {
            if (ch.read(b, e.dataOffset() + b.position()) < 0) throw new PickleException(file + ": " + e.name() + " is truncated");
        }
        return b.array();
    }

    // ---- the legacy format ----------------------------------------------------------------------

    private static TorchCheckpoint openLegacy(Path file, FileChannel ch) throws IOException {
        long size = ch.size();
        int window = (int) Math.min(size, MAX_PICKLE);
        String where = file.toString();
        PickleInput in = new PickleInput(ch.map(FileChannel.MapMode.READ_ONLY, 0, window), 0, where, window < size);
        Unpickler.PersistentLoad none = pid -> {
            throw new PickleException(where + ": a persistent id outside the checkpoint's object pickle");
        };
        Object magic = Unpickler.load(in, none);
        if (!LEGACY_MAGIC.equals(magic instanceof Long l ? BigInteger.valueOf(l) : magic)) {
            throw new PickleException(where + ": a pickle, but not a torch.save checkpoint (its first value is "
                    + Py.describe(magic) + ", not torch's magic number)");
        }
        Object protocol = Unpickler.load(in, none);
        if (!Long.valueOf(1001).equals(protocol)) {
            throw new PickleException(where + ": legacy checkpoint protocol " + Py.describe(protocol) + " (this reader knows 1001)");
        }
        Object sysInfo = Unpickler.load(in, none);
        if (sysInfo instanceof Map<?, ?> m && Boolean.FALSE.equals(m.get("little_endian"))) {
            throw new PickleException(where + ": a big-endian checkpoint, which is not supported");
        }
        Map<String, Py.Storage> roots = new LinkedHashMap<>();
        Object root = Unpickler.load(in, pid -> {
            Py.Storage s = storage(pid, 6, where);
            Py.Storage known = roots.putIfAbsent(s.key(), s);
            if (known != null) sameStorage(known, s, where);
            Object view = ((Py.Tuple) pid).get(5);
            if (view instanceof Py.None) return s;
            // a view of the root storage (torch < 1.0): (view key, element offset, view size)
            if (!(view instanceof Py.Tuple v) || v.size() != 3 || !(v.get(1) instanceof Long offset) || !(v.get(2) instanceof Long length)
                    || offset < 0 || length < 0 || offset > s.numel() || length > s.numel() - offset) {
                throw new PickleException(where + ": storage '" + s.key() + "' has view metadata " + Py.describe(view)
                        + " that does not lie inside its " + s.numel() + " elements");
            }
            return new Py.Storage(s.key(), s.type(), length, s.location(), offset);
        });
        Object keys = Unpickler.load(in, none);
        if (!(keys instanceof List<?> list) || !list.stream().allMatch(k -> k instanceof String)) {
            throw new PickleException(where + ": the storage listing is " + Py.describe(keys) + ", not a list of keys");
        }
        Map<String, Long> data = new LinkedHashMap<>();
        long at = in.position();
        ByteBuffer count = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        for (Object k : list) {
            String key = (String) k;
            Py.Storage s = roots.get(key);
            if (s == null) throw new PickleException(where + ": storage '" + key + "' is listed but no tensor uses it, so its size is unknown");
            count.clear();
            if (at + 8 > size || ch.read(count, at) != 8) {
                throw new PickleException(where + ": storage '" + key + "' is missing: the file ends at byte " + size + " (truncated?)");
            }
            long numel = count.getLong(0);
            if (numel != s.numel()) {
                throw new PickleException(where + ": storage '" + key + "' at byte " + at + " holds " + numel
                        + " elements, but the pickle declares " + s.numel());
            }
            long bytes = bytes(s, where);
            if (bytes > size - at - 8) {
                throw new PickleException(where + ": storage '" + key + "' (" + bytes + " bytes at byte " + (at + 8)
                        + ") runs past the end of the file (" + size + " bytes; truncated?)");
            }
            if (data.put(key, at + 8) != null) throw new PickleException(where + ": storage '" + key + "' is listed twice");
            at += 8 + bytes;
        }
        for (String key : roots.keySet()) {
            if (!data.containsKey(key)) throw new PickleException(where + ": storage '" + key + "' is used but not in the file's storage listing");
        }
        return of(file, Format.LEGACY, root, data, where);
    }

    // ---- shared ---------------------------------------------------------------------------------

    /** A persistent id: ('storage', torch.XStorage, key, location, numel[, view metadata]), as torch.save writes it. */
    private static Py.Storage storage(Object pid, int length, String where) throws PickleException {
        if (!(pid instanceof Py.Tuple t) || t.size() != length || !"storage".equals(t.get(0))) {
            throw new PickleException(where + ": a persistent id is " + Py.describe(pid) + ", expected ('storage', type, key,"
                    + " location, size" + (length == 6 ? ", view" : "") + ")");
        }
        if (!(t.get(1) instanceof Py.Name type) || type.kind() != Globals.Kind.STORAGE_TYPE) {
            throw new PickleException(where + ": a storage's type is " + Py.describe(t.get(1)) + ", not a storage class");
        }
        if (!(t.get(2) instanceof String key) || !(t.get(3) instanceof String location) || !(t.get(4) instanceof Long numel) || numel < 0) {
            throw new PickleException(where + ": a storage's key, location or size is malformed (" + Py.describe(t.get(2)) + ", "
                    + Py.describe(t.get(3)) + ", " + Py.describe(t.get(4)) + ")");
        }
        StorageType st = StorageType.ofClass(type.qualified().substring("torch.".length())).orElseThrow();
        return new Py.Storage(key, st, numel, location, 0);
    }

    private static Py.Storage sameStorage(Py.Storage known, Py.Storage again, String where) throws PickleException {
        if (known.type() != again.type() || known.numel() != again.numel()) {
            throw new PickleException(where + ": storage '" + known.key() + "' is declared as " + known.numel() + " "
                    + known.type().code + " and as " + again.numel() + " " + again.type().code);
        }
        return known;
    }

    private static long bytes(Py.Storage s, String where) throws PickleException {
        try {
            return Math.multiplyExact(s.numel(), s.type().elementSize);
        } catch (ArithmeticException e) {
            throw new PickleException(where + ": storage '" + s.key() + "' declares " + s.numel() + " elements, more than a file can hold");
        }
    }

    /** The weights of the unpickled object: its {@code state_dict}, else itself, flattened. */
    private static TorchCheckpoint of(Path file, Format format, Object root, Map<String, Long> data, String where) throws PickleException {
        if (!(root instanceof Map<?, ?> top)) {
            throw new PickleException(where + ": the checkpoint holds " + Py.describe(root) + ", not a dict of tensors");
        }
        Map<String, String> info = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : top.entrySet()) {
            Object v = e.getValue();
            if (e.getKey() instanceof String k && (v instanceof String || v instanceof Long || v instanceof BigInteger
                    || v instanceof Double || v instanceof Boolean)) {
                info.put(k, v.toString());
            }
        }
        boolean nested = top.get("state_dict") instanceof Map<?, ?>;
        Map<?, ?> weights = nested ? (Map<?, ?>) top.get("state_dict") : top;
        Map<String, Py.TensorRef> tensors = new LinkedHashMap<>();
        flatten(weights, "", tensors, new IdentityHashMap<>(), 0, where);
        if (tensors.isEmpty()) {
            List<String> keys = top.keySet().stream().limit(5).map(Py::describe).toList();
            throw new PickleException(where + ": no tensors" + (nested ? " under 'state_dict'" : "") + " (the top-level dict has "
                    + top.size() + " entries" + (keys.isEmpty() ? "" : ": " + String.join(", ", keys)) + ")");
        }
        return new TorchCheckpoint(file, format, tensors, data, info, nested ? "state_dict" : "");
    }

    private static void flatten(Map<?, ?> dict, String prefix, Map<String, Py.TensorRef> out, IdentityHashMap<Object, Boolean> seen,
                                int depth, String where) throws PickleException {
        if (depth > NESTING) throw new PickleException(where + ": dicts nested more than " + NESTING + " deep under '" + prefix + "'");
        if (seen.put(dict, Boolean.TRUE) != null) return; // a dict met twice (shared or cyclic) is flattened once
        for (Map.Entry<?, ?> e : dict.entrySet()) {
            if (!(e.getKey() instanceof String key)) continue;
            String name = prefix + key;
            if (e.getValue() instanceof Py.TensorRef t) {
                if (out.put(name, t) != null) throw new PickleException(where + ": two tensors are named '" + name + "'");
            } else if (e.getValue() instanceof Map<?, ?> inner) {
                flatten(inner, name + ".", out, seen, depth + 1, where);
            }
        }
    }

    private static String hex(ByteBuffer head) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < head.position(); i++) s.append(String.format("%02x ", head.get(i) & 0xff));
        return s.toString().trim();
    }

    // ---- the state dict -------------------------------------------------------------------------

    public Path file() { return file; }

    public Format format() { return format; }

    /** The top-level numbers and strings beside the weights ({@code global_step}, {@code epoch}, ...). */
    public Map<String, String> info() { return info; }

    /** Where in the object the weights were found: {@code state_dict}, or "" for the top-level dict. */
    public String weightsAt() { return weightsAt; }

    @Override
    public Set<String> keys() { return tensors.keySet(); }

    private Py.TensorRef tensor(String name) {
        Py.TensorRef t = tensors.get(name);
        if (t == null) throw new IllegalArgumentException(file + ": no tensor named '" + name + "'");
        return t;
    }

    @Override
    public long[] shape(String name) { return tensor(name).shape().clone(); }

    @Override
    public String dtype(String name) { return tensor(name).storage().type().code; }

    @Override
    public String describe(String name) { return file + " tensor '" + name + "'"; }

    @Override
    public Tensor get(String name) { return read(name, torch.ScalarType.Float); }

    /**
     * One tensor converted to {@code dtype}, owning its memory: the part of its storage the view reaches is read
     * ({@link FileTensors}, straight into tensor memory), viewed with the stored offset, shape and strides, and made
     * contiguous.
     */
    public Tensor read(String name, torch.ScalarType dtype) {
        Py.TensorRef t = tensor(name);
        Py.Storage s = t.storage();
        int item = s.type().elementSize;
        long start = storageData.get(s.key()) + (s.elementOffset() + t.offset()) * item;
        try {
            return FileTensors.read(file, start, t.extent(), s.type().scalarType, item, t.shape(), t.stride(), dtype);
        } catch (IOException e) {
            throw new UncheckedIOException(describe(name) + ": read failed: " + e.getMessage(), e);
        }
    }

    /** The tensors as the pickle declares them (storage, offset, shape, strides), in the file's order. */
    public Map<String, Py.TensorRef> tensors() { return tensors; }
}
