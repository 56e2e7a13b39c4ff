package dev.perfusion.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.perfusion.tensor.Ops;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * The safetensors format: an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
 * shape and byte range, then raw little-endian data. Tensors are read one at a time, straight into tensor memory
 * ({@link FileTensors}), and converted to the compute dtype on load. The header is validated in full before
 * anything is read.
 */
public final class Safetensors implements StateDict {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long MAX_HEADER = 100L << 20;

    /** One tensor's entry in the header. */
    public record Entry(String name, String dtype, long[] shape, long begin, long end) {
        public long numel() { return Ops.numel(shape); }
    }

    private final Path file;
    private final long dataStart;
    private final Map<String, Entry> entries;
    private final Map<String, String> metadata;

    private Safetensors(Path file, long dataStart, Map<String, Entry> entries, Map<String, String> metadata) {
        this.file = file;
        this.dataStart = dataStart;
        this.entries = entries;
        this.metadata = metadata;
    }

    static int itemSize(String dtype) {
        return switch (dtype) {
            case "F64", "I64", "U64" -> 8;
            case "F32", "I32", "U32" -> 4;
            case "F16", "BF16", "I16", "U16" -> 2;
            case "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2" -> 1;
            default -> -1;
        };
    }

    /** Opens and validates the header; reads no tensor data. */
    public static Safetensors open(Path file) throws IOException {
        long size;
        try {
            size = Files.size(file);
        } catch (NoSuchFileException e) {
            throw new IOException(file + ": no such file");
        }
        if (size < 8) throw new IOException(file + ": not a safetensors file: only " + size + " bytes (truncated?)");
        ByteBuffer head = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ch.read(head, 0);
            long headerLen = head.getLong(0);
            // the length is a u64: anything past MAX_HEADER (or negative as a long) is not a header
            if (headerLen <= 0 || headerLen > MAX_HEADER || 8 + headerLen > size) {
                throw new IOException(file + ": not a valid safetensors file: header length "
                        + Long.toUnsignedString(headerLen) + " does not fit in the file of " + size + " bytes"
                        + (headerLen > MAX_HEADER || headerLen < 0 ? " (and is over the " + MAX_HEADER + "-byte limit)" : "")
                        + " (truncated or not safetensors)");
            }
            ByteBuffer hb = ByteBuffer.allocate((int) headerLen);
            while (hb.hasRemaining()) {
                if (ch.read(hb, 8 + hb.position()) < 0) throw new IOException(file + ": truncated header");
            }
            String text = new String(hb.array(), StandardCharsets.UTF_8);
            return parse(file, text, size - 8 - headerLen, 8 + headerLen);
        }
    }

    private static Safetensors parse(Path file, String headerText, long dataSize, long dataStart) throws IOException {
        JsonNode root;
        try {
            root = JSON.readTree(headerText.trim());
        } catch (JsonProcessingException e) {
            throw new IOException(file + ": corrupt safetensors header (invalid JSON): " + e.getOriginalMessage());
        }
        if (root == null || !root.isObject()) throw new IOException(file + ": corrupt safetensors header: not a JSON object");
        Map<String, Entry> entries = new LinkedHashMap<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            String name = f.getKey();
            JsonNode v = f.getValue();
            if (name.equals("__metadata__")) {
                v.fields().forEachRemaining(m -> metadata.put(m.getKey(), m.getValue().asText()));
                continue;
            }
            String where = file + ": tensor '" + name + "'";
            if (!v.isObject() || !v.has("dtype") || !v.has("shape") || !v.has("data_offsets")) {
                throw new IOException(where + ": header entry lacks dtype, shape or data_offsets");
            }
            String dtype = v.get("dtype").asText();
            int item = itemSize(dtype);
            if (item < 0) throw new IOException(where + ": unknown dtype " + dtype);
            JsonNode shapeNode = v.get("shape");
            if (!shapeNode.isArray()) throw new IOException(where + ": shape must be a list, got " + shapeNode);
            long[] shape = new long[shapeNode.size()];
            for (int i = 0; i < shape.length; i++) {
                JsonNode d = shapeNode.get(i);
                if (!d.canConvertToExactIntegral() || !d.canConvertToLong() || d.asLong() < 0) {
                    throw new IOException(where + ": bad shape " + shapeNode + " (expected non-negative integers)");
                }
                shape[i] = d.asLong();
            }
            JsonNode off = v.get("data_offsets");
            if (!off.isArray() || off.size() != 2) throw new IOException(where + ": data_offsets must be [begin, end], got " + off);
            long begin = off.get(0).canConvertToExactIntegral() && off.get(0).canConvertToLong() ? off.get(0).asLong() : -1;
            long end = off.get(1).canConvertToExactIntegral() && off.get(1).canConvertToLong() ? off.get(1).asLong() : -1;
            if (begin < 0 || end < begin) throw new IOException(where + ": bad data_offsets " + off);
            if (end > dataSize) {
                throw new IOException(where + ": data_offsets " + off + " point outside the file (data section has "
                        + dataSize + " bytes; truncated file?)");
            }
            long expected = bytesOf(shape, item);
            if (expected < 0) {
                throw new IOException(where + ": shape " + Arrays.toString(shape) + " of " + dtype
                        + " needs more bytes than a file can hold");
            }
            if (end - begin != expected) {
                throw new IOException(where + ": shape " + Arrays.toString(shape) + " of " + dtype + " needs " + expected
                        + " bytes but data_offsets give " + (end - begin));
            }
            entries.put(name, new Entry(name, dtype, shape, begin, end));
        }
        List<Entry> sorted = new ArrayList<>(entries.values());
        sorted.sort(Comparator.comparingLong(Entry::begin));
        for (int i = 1; i < sorted.size(); i++) {
            if (sorted.get(i).begin() < sorted.get(i - 1).end()) {
                throw new IOException(file + ": tensors '" + sorted.get(i - 1).name() + "' and '" + sorted.get(i).name()
                        + "' overlap in the data section");
            }
        }
        return new Safetensors(file, dataStart, Collections.unmodifiableMap(entries), Collections.unmodifiableMap(metadata));
    }

    /** numel(shape) * item, or -1 when that overflows a long. */
    private static long bytesOf(long[] shape, int item) {
        for (long d : shape) if (d == 0) return 0;
        long n = item;
        for (long d : shape) {
            if (n > Long.MAX_VALUE / d) return -1;
            n *= d;
        }
        return n;
    }

    public Path file() { return file; }

    public Map<String, String> metadata() { return metadata; }

    public Map<String, Entry> entries() { return entries; }

    @Override
    public Set<String> keys() { return entries.keySet(); }

    @Override
    public long[] shape(String name) {
        return entry(name).shape().clone();
    }

    @Override
    public String dtype(String name) { return entry(name).dtype(); }

    @Override
    public String describe(String name) { return file + " tensor '" + name + "'"; }

    private Entry entry(String name) {
        Entry e = entries.get(name);
        if (e == null) throw new IllegalArgumentException(file + ": no tensor named '" + name + "'");
        return e;
    }

    /** Reads one tensor as float32 on the CPU (F16/BF16/F64/ints converted), owning its memory. */
    @Override
    public Tensor get(String name) {
        return read(name, torch.ScalarType.Float);
    }

    /** Reads one tensor converted to {@code dtype}, owning its memory (read straight into it, {@link FileTensors}). */
    public Tensor read(String name, torch.ScalarType dtype) {
        Entry e = entry(name);
        torch.ScalarType stored = scalarType(e.dtype());
        try {
            return FileTensors.read(file, dataStart + e.begin(), stored, itemSize(e.dtype()), e.shape(), dtype);
        } catch (IOException ex) {
            throw new java.io.UncheckedIOException(describe(name) + ": read failed: " + ex.getMessage(), ex);
        }
    }

    private torch.ScalarType scalarType(String dtype) {
        return switch (dtype) {
            case "F64" -> torch.ScalarType.Double;
            case "F32" -> torch.ScalarType.Float;
            case "F16" -> torch.ScalarType.Half;
            case "BF16" -> torch.ScalarType.BFloat16;
            case "I64" -> torch.ScalarType.Long;
            case "I32" -> torch.ScalarType.Int;
            case "I16" -> torch.ScalarType.Short;
            case "I8" -> torch.ScalarType.Char;
            case "U8" -> torch.ScalarType.Byte;
            case "BOOL" -> torch.ScalarType.Bool;
            default -> throw new IllegalArgumentException(file + ": dtype " + dtype + " cannot be loaded as a tensor");
        };
    }

    // ---- writing --------------------------------------------------------------------------------

    /** The dtype tensors are stored in. */
    public enum StoredType {
        F32("F32", torch.ScalarType.Float), F16("F16", torch.ScalarType.Half);

        final String code;
        final torch.ScalarType scalarType;

        StoredType(String code, torch.ScalarType scalarType) {
            this.code = code;
            this.scalarType = scalarType;
        }

        public torch.ScalarType scalarType() { return scalarType; }
    }

    /**
     * One tensor to write: its name, its shape (the header is written first) and its value, asked for when its turn
     * comes, so that a whole model is written holding one tensor at a time.
     */
    public record Pending(String name, long[] shape, Supplier<Tensor> value) {}

    /** Writes tensors (in map order) and string metadata atomically. */
    public static void write(Path target, Map<String, Tensor> tensors, Map<String, String> metadata, StoredType type)
            throws IOException {
        List<Pending> pending = new ArrayList<>();
        tensors.forEach((name, t) -> pending.add(new Pending(name, Ops.shape(t), () -> t)));
        write(target, pending, metadata, type);
    }

    /**
     * Writes tensors (in list order) and string metadata atomically: the header from the declared shapes, then each
     * tensor's bytes, asked for, converted to {@code type} and written one at a time (each in a scope of its own).
     */
    public static void write(Path target, List<Pending> tensors, Map<String, String> metadata, StoredType type)
            throws IOException {
        ObjectNode header = JSON.createObjectNode();
        if (metadata != null && !metadata.isEmpty()) {
            ObjectNode meta = header.putObject("__metadata__");
            metadata.forEach(meta::put);
        }
        int item = type == StoredType.F32 ? 4 : 2;
        long offset = 0;
        for (Pending t : tensors) {
            long bytes = Ops.numel(t.shape()) * item;
            ObjectNode e = header.putObject(t.name());
            e.put("dtype", type.code);
            var shapeNode = e.putArray("shape");
            for (long d : t.shape()) shapeNode.add(d);
            e.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] json = JSON.writeValueAsBytes(header);
        int padded = (json.length + 7) / 8 * 8;
        byte[] headerBytes = Arrays.copyOf(json, padded);
        Arrays.fill(headerBytes, json.length, padded, (byte) ' ');
        AtomicFiles.write(target, out -> {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, padded);
            out.write(len.array());
            out.write(headerBytes);
            byte[] chunk = new byte[1 << 22];
            for (Pending t : tensors) {
                try (dev.perfusion.tensor.Scope s = dev.perfusion.tensor.Scope.inference()) {
                    Tensor c = t.value().get().detach().to(Ops.cpu(), type.scalarType).contiguous();
                    if (!Arrays.equals(Ops.shape(c), t.shape())) {
                        throw new IllegalStateException(target + ": tensor '" + t.name() + "' was declared " + Arrays.toString(t.shape())
                                + " but is " + Ops.shapeString(c));
                    }
                    long bytes = c.numel() * item;
                    if (bytes == 0) continue; // an empty tensor has no data pointer
                    BytePointer p = new BytePointer(c.data_ptr()).capacity(bytes);
                    for (long at = 0; at < bytes; at += chunk.length) {
                        int n = (int) Math.min(chunk.length, bytes - at);
                        p.position(at).get(chunk, 0, n);
                        out.write(chunk, 0, n);
                    }
                }
            }
        });
    }
}
