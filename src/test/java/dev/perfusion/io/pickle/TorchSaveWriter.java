package dev.perfusion.io.pickle;

import dev.perfusion.io.FileTensors;
import dev.perfusion.tensor.Ops;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.pytorch.Tensor;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * Writes state dicts as torch.save does, for tests and for the load-time report: the zip format (a pickle of
 * {@code _rebuild_tensor_v2} calls on persistent-id storages, one stored member per storage) and the legacy
 * format (five pickles, then each storage's element count and bytes). Each tensor gets its own contiguous storage.
 */
public final class TorchSaveWriter {
    private TorchSaveWriter() {}

    /** One tensor of a state dict, produced when its turn comes (large files are written a tensor at a time). */
    public record Named(String name, Tensor value) {}

    /** How a tensor was stored: for the pickle, written after the data. */
    private record Stored(String name, String key, StorageType type, long[] shape) {}

    /** The top-level object: the tensors themselves, or {@code {'state_dict': tensors, extras...}}. */
    public record Layout(boolean underStateDict, Map<String, Long> extras) {
        public static final Layout PLAIN = new Layout(false, Map.of());

        public static Layout lightning(long globalStep) {
            Map<String, Long> extras = new LinkedHashMap<>();
            extras.put("global_step", globalStep);
            return new Layout(true, extras);
        }
    }

    public static void zip(Path file, Map<String, Tensor> tensors, Layout layout) throws IOException {
        List<Named> named = new ArrayList<>();
        tensors.forEach((k, v) -> named.add(new Named(k, v)));
        zip(file, named.iterator(), layout);
    }

    /** The zip format, archive folder named after the file, storages first and data.pkl last. */
    public static void zip(Path file, Iterator<Named> tensors, Layout layout) throws IOException {
        String archive = file.getFileName().toString().replaceAll("\\.[^.]*$", "");
        List<Stored> stored = new ArrayList<>();
        try (ZipOutputStream zip = new ZipOutputStream(new BufferedOutputStream(Files.newOutputStream(file), 1 << 20))) {
            while (tensors.hasNext()) {
                Named t = tensors.next();
                String key = Integer.toString(stored.size());
                stored.add(new Stored(t.name(), key, typeOf(t.value()), dev.perfusion.tensor.Ops.shape(t.value())));
                storedEntry(zip, archive + "/data/" + key, bytesOf(t.value()));
            }
            storedEntry(zip, archive + "/data.pkl", pickle(stored, layout, false));
            storedEntry(zip, archive + "/byteorder", "little".getBytes());
            storedEntry(zip, archive + "/version", "3\n".getBytes());
        }
    }

    /** The legacy (non-zip) format. */
    public static void legacy(Path file, Map<String, Tensor> tensors, Layout layout) throws IOException {
        List<Stored> stored = new ArrayList<>();
        List<byte[]> data = new ArrayList<>();
        tensors.forEach((name, t) -> {
            stored.add(new Stored(name, "9" + stored.size(), typeOf(t), dev.perfusion.tensor.Ops.shape(t)));
            data.add(bytesOf(t));
        });
        try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(file))) {
            // torch's magic number 0x1950a86a20f9469cfc6c as LONG1, little-endian
            out.write(new PickleWriter().proto(2).op(0x8a).op(10)
                    .raw(reverse(java.util.HexFormat.of().parseHex("1950a86a20f9469cfc6c"))).stop().bytes());
            out.write(new PickleWriter().proto(2).integer(1001).stop().bytes());
            out.write(new PickleWriter().proto(2).op('}').mark().str("protocol_version").integer(1001).str("little_endian").op(0x88)
                    .str("type_sizes").op('}').mark().str("short").integer(2).str("int").integer(4).str("long").integer(4).op('u')
                    .op('u').stop().bytes());
            out.write(pickle(stored, layout, true));
            PickleWriter keys = new PickleWriter().proto(2).op(']').mark();
            for (Stored s : stored) keys.str(s.key());
            out.write(keys.op('e').stop().bytes());
            for (int i = 0; i < stored.size(); i++) {
                out.write(PickleWriter.le(Ops.numel(stored.get(i).shape()), 8));
                out.write(data.get(i));
            }
        }
    }

    private static byte[] reverse(byte[] b) {
        byte[] out = new byte[b.length];
        for (int i = 0; i < b.length; i++) out[i] = b[b.length - 1 - i];
        return out;
    }

    /** The object pickle: a dict of {@code _rebuild_tensor_v2} calls, optionally under 'state_dict'. */
    private static byte[] pickle(List<Stored> stored, Layout layout, boolean legacy) {
        PickleWriter p = new PickleWriter().proto(2).op('}').mark();
        if (layout.underStateDict()) p.str("state_dict").op('}').mark();
        for (Stored s : stored) {
            p.str(s.name());
            tensor(p, s.key(), s.type(), Ops.numel(s.shape()), 0, s.shape(), FileTensors.contiguousStrides(s.shape()), s.name().length() % 2 == 0, legacy);
        }
        if (layout.underStateDict()) p.op('u');
        layout.extras().forEach((k, v) -> p.str(k).integer(v));
        return p.op('u').stop().bytes();
    }

    /**
     * One tensor as torch.save pickles it: {@code _rebuild_tensor_v2(persistent storage, offset, size, stride, False,
     * OrderedDict())}, the storage given as ('storage', torch.XStorage, key, 'cpu', numel); written with a memo put
     * when {@code memo}; the legacy format's persistent ids end with the view metadata (None).
     */
    public static void tensor(PickleWriter p, String key, StorageType type, long storageNumel, long offset, long[] shape,
                              long[] stride, boolean memo, boolean legacy) {
        p.global("torch._utils", "_rebuild_tensor_v2");
        p.mark().mark().str("storage").global("torch", type.className).str(key).str("cpu").integer(storageNumel);
        if (legacy) p.op('N');
        p.op('t');
        if (memo) p.binput(200);
        p.op('Q');
        p.integer(offset).ints(shape).ints(stride).op(0x89).global("collections", "OrderedDict").op(')').op('R');
        p.op('t').op('R');
    }

    private static void storedEntry(ZipOutputStream zip, String name, byte[] bytes) throws IOException {
        ZipEntry e = new ZipEntry(name);
        e.setMethod(ZipEntry.STORED);
        e.setSize(bytes.length);
        e.setCompressedSize(bytes.length);
        CRC32 crc = new CRC32();
        crc.update(bytes);
        e.setCrc(crc.getValue());
        zip.putNextEntry(e);
        zip.write(bytes);
        zip.closeEntry();
    }

    static StorageType typeOf(Tensor t) {
        var type = t.scalar_type();
        return Arrays.stream(StorageType.values()).filter(s -> s.scalarType.value == type.value).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("no storage type for " + type));
    }

    static byte[] bytesOf(Tensor t) {
        Tensor c = t.contiguous();
        byte[] out = new byte[Math.toIntExact(c.numel() * c.element_size())];
        if (out.length > 0) new BytePointer(c.data_ptr()).capacity(out.length).get(out);
        return out;
    }
}
