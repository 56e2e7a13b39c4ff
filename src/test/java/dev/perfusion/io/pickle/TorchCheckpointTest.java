package dev.perfusion.io.pickle;

import dev.perfusion.Fixtures;
import dev.perfusion.io.Npy;
import dev.perfusion.io.Safetensors;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/** The reference's torch.save files (../shared/fixtures/sd-tiny/pickle) and torch.save-format files written here. */
class TorchCheckpointTest {
    @TempDir Path dir;

    private static Path pickles() {
        return Fixtures.sdTiny().resolve("pickle");
    }

    private static final Map<String, String> VIEW_DTYPES = Map.ofEntries(Map.entry("base", "F32"), Map.entry("row_slice", "F32"),
            Map.entry("transposed", "F32"), Map.entry("column_stride", "F32"), Map.entry("bf16", "BF16"), Map.entry("f16", "F16"),
            Map.entry("i64", "I64"), Map.entry("i32", "I32"), Map.entry("u8", "U8"), Map.entry("bool", "BOOL"),
            Map.entry("scalar", "F32"), Map.entry("param", "F32"));

    @Test
    void viewsOfOneStorageReadAsTheReferenceSaysInBothFormats() throws IOException {
        for (String file : List.of("views-zip.pt", "views-legacy.pt")) {
            TorchCheckpoint ckpt = TorchCheckpoint.open(pickles().resolve(file));
            assertEquals(file.contains("zip") ? TorchCheckpoint.Format.ZIP : TorchCheckpoint.Format.LEGACY, ckpt.format());
            assertEquals(VIEW_DTYPES.keySet(), ckpt.keys(), file);
            for (String name : ckpt.keys()) {
                Npy.Array expected = Npy.read(pickles().resolve("views-expected/" + name + ".npy"));
                assertArrayEquals(expected.shape(), ckpt.shape(name), file + " " + name);
                assertEquals(VIEW_DTYPES.get(name), ckpt.dtype(name), file + " " + name);
                try (Scope s = Scope.inference()) {
                    // float64 holds every value of these dtypes exactly (the int64 ones are below 2^53)
                    Tensor t = ckpt.read(name, org.bytedeco.pytorch.global.torch.ScalarType.Double);
                    assertArrayEquals(expected.shape(), Ops.shape(t), file + " " + name);
                    assertArrayEquals(expected.asDoubles(), Ops.toDoubles(t), 0, file + " " + name);
                }
            }
            // the float32 views share one storage, at their own offsets and strides
            Map<String, Py.TensorRef> refs = ckpt.tensors();
            assertEquals(refs.get("base").storage().key(), refs.get("row_slice").storage().key(), file);
            assertEquals(refs.get("base").storage().key(), refs.get("transposed").storage().key(), file);
            assertEquals(6, refs.get("row_slice").offset(), file);
            assertArrayEquals(new long[] {1, 6}, refs.get("transposed").stride(), file);
            assertArrayEquals(new long[] {6, 2}, refs.get("column_stride").stride(), file);
        }
    }

    @Test
    void theZipCkptIsItsSafetensorsFileBitForBitUnderStateDict() throws IOException {
        Safetensors reference = Safetensors.open(Fixtures.singleFile());
        TorchCheckpoint zip = TorchCheckpoint.open(pickles().resolve("sd-tiny-zip-fp16.ckpt"));
        TorchCheckpoint legacy = TorchCheckpoint.open(pickles().resolve("sd-tiny-legacy-fp32.ckpt"));
        assertEquals("state_dict", zip.weightsAt());
        assertEquals("470000", zip.info().get("global_step"));
        assertEquals("6", zip.info().get("epoch"));
        assertEquals(reference.keys(), zip.keys());
        assertEquals(reference.keys(), legacy.keys());
        int f16 = 0;
        for (String name : reference.keys()) {
            assertEquals(reference.dtype(name), zip.dtype(name), name);
            assertEquals("F32", legacy.dtype(name), name);
            if (zip.dtype(name).equals("F16")) f16++;
            try (Scope s = Scope.inference()) {
                float[] expected = Ops.toFloats(reference.get(name));
                assertArrayEquals(expected, Ops.toFloats(zip.get(name)), name);
                assertArrayEquals(expected, Ops.toFloats(legacy.get(name)), name);
            }
        }
        assertTrue(f16 > 400, f16 + " F16 tensors");
    }

    @Test
    void diffusersBinFilesAreTheirFoldersSafetensors() throws IOException {
        Map<String, String> files = Map.of("unet/diffusion_pytorch_model", "unet/diffusion_pytorch_model",
                "vae/diffusion_pytorch_model", "vae/diffusion_pytorch_model", "text_encoder/pytorch_model", "text_encoder/model");
        for (var e : files.entrySet()) {
            TorchCheckpoint bin = TorchCheckpoint.open(pickles().resolve("diffusers-bin/" + e.getKey() + ".bin"));
            Safetensors st = Safetensors.open(Fixtures.diffusers().resolve(e.getValue() + ".safetensors"));
            assertEquals("", bin.weightsAt());
            for (String name : st.keys()) {
                try (Scope s = Scope.inference()) {
                    assertArrayEquals(Ops.toFloats(st.get(name)), Ops.toFloats(bin.get(name)), e.getKey() + " " + name);
                }
            }
        }
    }

    @Test
    void theReferencesHostileFilesAreRefusedNamingWhat() {
        Path hostile = pickles().resolve("hostile");
        assertRefused(hostile.resolve("eval-zip.ckpt"), "the global '__builtin__.eval' (opcode GLOBAL), which is not allowed",
                "eval-zip/data.pkl", "nothing was run");
        assertRefused(hostile.resolve("system-legacy.ckpt"), "the global 'posix.system' (opcode GLOBAL), which is not allowed");
        assertRefused(hostile.resolve("short-storage-zip.ckpt"), "storage member _tmp/data/0 holds 8 bytes, but the pickle declares"
                + " 4 elements of F32 (16 bytes) (truncated or corrupt file)");
    }

    // ---- files written here ---------------------------------------------------------------------

    private static Map<String, Tensor> twoTensors() {
        Map<String, Tensor> t = new LinkedHashMap<>();
        t.put("conv.weight", Ops.fromFloats(new float[] {1, -2, 3.5f, 0, 1e-3f, 7}, 2, 3));
        t.put("conv.bias", Ops.fromFloats(new float[] {0.5f, -0.5f}, 2).to(org.bytedeco.pytorch.global.torch.ScalarType.Half));
        return t;
    }

    @Test
    void aPlainStateDictAndALightningOneInBothFormats() throws IOException {
        try (Scope s = Scope.inference()) {
            for (boolean legacy : new boolean[] {false, true}) {
                for (TorchSaveWriter.Layout layout : List.of(TorchSaveWriter.Layout.PLAIN, TorchSaveWriter.Layout.lightning(12))) {
                    Path file = dir.resolve((legacy ? "legacy" : "zip") + layout.underStateDict() + ".ckpt");
                    if (legacy) TorchSaveWriter.legacy(file, twoTensors(), layout);
                    else TorchSaveWriter.zip(file, twoTensors(), layout);
                    TorchCheckpoint c = TorchCheckpoint.open(file);
                    assertEquals(List.of("conv.weight", "conv.bias"), List.copyOf(c.keys()), file.toString());
                    assertEquals(layout.underStateDict() ? "state_dict" : "", c.weightsAt());
                    assertEquals(layout.underStateDict() ? Map.of("global_step", "12") : Map.of(), c.info());
                    assertEquals("F16", c.dtype("conv.bias"));
                    assertArrayEquals(new float[] {1, -2, 3.5f, 0, 1e-3f, 7}, Ops.toFloats(c.get("conv.weight")));
                    assertArrayEquals(new float[] {0.5f, -0.5f}, Ops.toFloats(c.get("conv.bias")));
                    assertTrue(TorchCheckpoint.looksLike(file));
                }
            }
        }
    }

    /** Every storage class torch.save names (the reference's views cover F32, BF16, F16, I64, I32, U8 and BOOL). */
    @Test
    void everyStorageTypeReadsBackInBothFormats() throws IOException {
        float[] values = {1, -2, 3, 0, 100, -7};
        try (Scope s = Scope.inference()) {
            Map<String, Tensor> all = new LinkedHashMap<>();
            for (StorageType type : StorageType.values()) {
                float[] v = type == StorageType.BYTE ? new float[] {1, 2, 3, 0, 100, 7} : type == StorageType.BOOL ? new float[] {1, 0, 1, 0, 1, 1} : values;
                all.put(type.code, Ops.fromFloats(v, 2, 3).to(type.scalarType));
            }
            for (boolean legacy : new boolean[] {false, true}) {
                Path file = dir.resolve(legacy ? "all-legacy.pt" : "all-zip.pt");
                if (legacy) TorchSaveWriter.legacy(file, all, TorchSaveWriter.Layout.PLAIN);
                else TorchSaveWriter.zip(file, all, TorchSaveWriter.Layout.PLAIN);
                TorchCheckpoint c = TorchCheckpoint.open(file);
                assertEquals(all.keySet(), c.keys(), file.toString());
                for (String code : all.keySet()) {
                    assertEquals(code, c.dtype(code), file + " " + code);
                    assertArrayEquals(new long[] {2, 3}, c.shape(code), file + " " + code);
                    assertArrayEquals(Ops.toDoubles(all.get(code).to(org.bytedeco.pytorch.global.torch.ScalarType.Double)),
                            Ops.toDoubles(c.read(code, org.bytedeco.pytorch.global.torch.ScalarType.Double)), 0, file + " " + code);
                }
            }
        }
    }

    /** Protocol 4 as torch.save(..., pickle_protocol=4) writes it: FRAME, STACK_GLOBAL, SHORT_BINUNICODE, MEMOIZE. */
    @Test
    void protocolFourWithStackGlobalAndMemoize() throws IOException {
        PickleWriter body = new PickleWriter().op('}').op(0x94).mark();
        body.shortStr("w").stackGlobal("torch._utils", "_rebuild_tensor_v2").op(0x94);
        body.mark().mark().shortStr("storage").op(0x94).stackGlobal("torch", "FloatStorage").op(0x94).shortStr("0").shortStr("cpu")
                .integer(6).op('t').op(0x94).op('Q').integer(1).ints(2, 2).ints(1, 2).op(0x89)
                .stackGlobal("collections", "OrderedDict").op(0x94).op(')').op('R').op('t').op('R').op(0x94);
        // the same storage again through the memo, as pickle writes a repeated object
        body.shortStr("again").binget(1).mark().mark().binget(2).binget(3).shortStr("0").shortStr("cpu").integer(6).op('t').op('Q')
                .integer(0).ints(3).ints(1).op(0x89).binget(5).op(')').op('R').op('t').op('R');
        body.op('u').stop();
        byte[] frame = body.bytes();
        byte[] pickle = new PickleWriter().proto(4).op(0x95).raw(PickleWriter.le(frame.length, 8)).raw(frame).bytes();
        Path file = zipOf(dir.resolve("p4.pt"), pickle, Map.of("0", floats(0, 1, 2, 3, 4, 5)));
        TorchCheckpoint c = TorchCheckpoint.open(file);
        try (Scope s = Scope.inference()) {
            // offset 1, shape [2, 2], strides [1, 2]: elements 1, 3 / 2, 4
            assertArrayEquals(new float[] {1, 3, 2, 4}, Ops.toFloats(c.get("w")));
            assertArrayEquals(new float[] {0, 1, 2}, Ops.toFloats(c.get("again")));
        }
    }

    @Test
    void callsOfAnythingButTheAllowListAreRefused() {
        // os.system('true') the way pickle writes a __reduce__ (GLOBAL, args, REDUCE)
        assertPickleRefused(new PickleWriter().proto(2).global("os", "system").str("true").op(0x85).op('R').stop(),
                "the global 'os.system' (opcode GLOBAL), which is not allowed");
        assertPickleRefused(new PickleWriter().proto(4).stackGlobal("builtins", "eval").shortStr("1+1").op(0x85).op('R').stop(),
                "the global 'builtins.eval' (opcode STACK_GLOBAL), which is not allowed");
        // __reduce__ of an arbitrary class
        assertPickleRefused(new PickleWriter().proto(2).global("mymodule.evil", "Payload").op(')').op('R').stop(),
                "the global 'mymodule.evil.Payload' (opcode GLOBAL)");
        assertPickleRefused(new PickleWriter().proto(2).global("torch", "FloatStorage").op(')').op('R').stop(),
                "calls torch.FloatStorage, which a checkpoint may only name, never call");
        assertPickleRefused(new PickleWriter().proto(2).global("collections", "OrderedDict").op(')').op(0x81).stop(),
                "opcode NEWOBJ instantiates a class");
        assertPickleRefused(new PickleWriter().mark().op('i').raw("os\nsystem\n".getBytes()).stop(), "opcode INST instantiates a class");
        assertPickleRefused(new PickleWriter().proto(2).mark().op('o').stop(), "opcode OBJ instantiates a class");
        assertPickleRefused(new PickleWriter().proto(4).op(')').op('}').op(0x92).stop(), "opcode NEWOBJ_EX");
        assertPickleRefused(new PickleWriter().proto(2).op(0x82).op(1).stop(), "opcode EXT1 names a global through the extension registry");
        assertPickleRefused(new PickleWriter().proto(2).op('}').op('}').op('b').stop(), "sets the state of a dict of 0 (opcode BUILD)");
        assertPickleRefused(new PickleWriter().proto(2).op('}').op(']').op(']').op('s').stop(), "a dict key is a list of 0, which is unhashable");
        assertPickleRefused(new PickleWriter().proto(2).op(0xff), "unknown opcode 0xff");
        assertPickleRefused(new PickleWriter().proto(2).str("never stops"), "an opcode at byte 18 needs 1 bytes but only 0 are left");
    }

    @Test
    void nestingAndDeclaredSizesAreBounded() throws IOException {
        PickleWriter tuples = new PickleWriter().proto(2).op(')');
        for (int i = 0; i < 150; i++) tuples.op(0x85);
        assertPickleRefused(tuples.stop(), "tuples nested more than 100 deep");
        assertPickleRefused(new PickleWriter().proto(4).op(0x8d).raw(PickleWriter.le(1L << 40, 8)).stop(),
                "BINUNICODE8 declares 1099511627776 bytes (more than the 16777216 a checkpoint's strings need)");
        assertPickleRefused(new PickleWriter().proto(2).op('X').raw(PickleWriter.le(1000, 4)).raw("short".getBytes()),
                "BINUNICODE at byte 7 needs 1000 bytes but only 5 are left");
        // a million nested lists build (iteratively) and are never walked: no tensors, a clear error
        PickleWriter lists = new PickleWriter().proto(2).op('}').str("state_dict").op('}').str("deep");
        for (int i = 0; i < 1_000_000; i++) lists.mark();
        lists.op(']');
        for (int i = 0; i < 1_000_000; i++) lists.op('l');
        assertFileRefused(zipOf(dir.resolve("lists.ckpt"), lists.op('s').op('s').stop().bytes(), Map.of()),
                "no tensors under 'state_dict'");
        // dicts nested deeper than any state dict
        PickleWriter dicts = new PickleWriter().proto(2).op('}');
        for (int i = 0; i < 40; i++) dicts.str("d").op('}');
        for (int i = 0; i < 40; i++) dicts.op('s');
        assertFileRefused(zipOf(dir.resolve("dicts.ckpt"), dicts.stop().bytes(), Map.of()), "dicts nested more than 16 deep under 'd.d.d.");
        // a dict that holds itself is walked once
        byte[] cyclic = new PickleWriter().proto(2).op('}').binput(0).str("me").binget(0).op('s').stop().bytes();
        assertFileRefused(zipOf(dir.resolve("cyclic.ckpt"), cyclic, Map.of()), "no tensors (the top-level dict has 1 entries");
    }

    /** t_0 = (1,), t_i = (t_i-1, t_i-1) through the memo (memo 0): 2^k values to hash from a few bytes a level. */
    private static PickleWriter repeatedTuple(PickleWriter p, int levels) {
        p.integer(1).op(0x85);
        for (int i = 0; i < levels; i++) p.binput(0).op('0').binget(0).binget(0).op(0x86);
        return p;
    }

    @Test
    void whatTheMemoRepeatsAndHugeIntsAreBounded() {
        // a dict key whose hashing would visit 2^64 values (200 bytes; 2^32 took 7 minutes before the bound)
        assertPickleRefused(repeatedTuple(new PickleWriter().proto(2).op('}'), 64).integer(0).op('s').stop(),
                "hashing a dict key would copy or hash more than 20000000 values");
        // the same key in Python 2's OrderedDict([[key, value]])
        PickleWriter od = new PickleWriter().proto(2).global("collections", "OrderedDict").mark().mark();
        assertPickleRefused(repeatedTuple(od, 64).integer(0).op('l').op('l').op(0x85).op('R').stop(),
                "calls of collections.OrderedDict would copy or hash more than 20000000 values");
        // set() of one memoized list of a million values, called again and again (each call copies the million)
        PickleWriter sets = new PickleWriter().proto(2).global("builtins", "set").binput(0).op('0').mark().integer(1);
        for (int i = 0; i < 1_000_000; i++) sets.op('2');
        sets.op('l').binput(1).op('0');
        for (int i = 0; i < 25; i++) sets.binget(0).binget(1).op(0x85).op('R').op('0');
        assertPickleRefused(sets.op('N').stop(), "calls of builtins.set would copy or hash more than 20000000 values");
        // _codecs.encode of one memoized string of a million characters, again and again: each call copies the million
        PickleWriter encodes = new PickleWriter().proto(2).global("_codecs", "encode").binput(0).op('0').str("a".repeat(1 << 20)).binput(1).op('0')
                .str("latin1").binput(2).op('0').op(']');
        for (int i = 0; i < 8000; i++) encodes.binget(0).binget(1).binget(2).op(0x86).op('R').op('a');
        assertPickleRefused(encodes.op('0').op('N').stop(), "calls of _codecs.encode would copy or hash more than 20000000 values");
        // frozensets nested through lists, which hide the nesting from the argument tuples
        PickleWriter frozen = new PickleWriter().proto(2).global("builtins", "frozenset").binput(0).op('0').integer(1);
        for (int i = 0; i < 150; i++) frozen.binput(1).op('0').binget(0).mark().binget(1).op('l').op(0x85).op('R');
        assertPickleRefused(frozen.stop(), "frozensets nested more than 100 deep");
        // an int of a million bytes (printing it in decimal takes minutes); one of 300 bytes is read
        assertPickleRefused(new PickleWriter().proto(2).op(0x8b).raw(PickleWriter.le(1 << 20, 4)).raw(new byte[1 << 20]).stop(),
                "LONG4 declares an int of 1048576 bytes (more than the 1024 a checkpoint's numbers need)");
        byte[] ones = new byte[300];
        java.util.Arrays.fill(ones, (byte) 1);
        Object big = assertDoesNotThrow(() -> Unpickler.load(new PickleWriter().proto(2).op(0x8b).raw(PickleWriter.le(300, 4)).raw(ones)
                .stop().bytes(), "ok.pkl", pid -> pid));
        assertEquals(299 * 8 + 1, ((java.math.BigInteger) big).bitLength());
        // memoized tuples a state dict does use stay cheap: (t_8 -> 0) is 512 values to hash
        assertDoesNotThrow(() -> Unpickler.load(repeatedTuple(new PickleWriter().proto(2).op('}'), 8).integer(0).op('s').stop().bytes(),
                "ok.pkl", pid -> pid));
    }

    @Test
    void tensorsAndStoragesMustLieInsideTheFile() throws IOException {
        // a view repeating one element a trillion times (stride 0): 4 TB once copied out, from a file of a few hundred bytes
        assertFileRefused(zipOf(dir.resolve("broadcast.ckpt"), oneTensor(1, 0, new long[] {1L << 20, 1L << 20}, new long[] {0, 0}), Map.of("0", floats(1))),
                "holds 1099511627776 elements, more than its storage '0' (1)");
        // an expanded buffer of a small size is read, as torch.save keeps it (a position_ids-like row)
        Path expanded = zipOf(dir.resolve("expanded.ckpt"), oneTensor(3, 0, new long[] {4, 3}, new long[] {0, 1}), Map.of("0", floats(0, 1, 2)));
        TorchCheckpoint c = TorchCheckpoint.open(expanded);
        try (Scope s = Scope.inference()) {
            assertArrayEquals(new float[] {0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2}, Ops.toFloats(c.get("w")));
        }
        // a view past its storage's end
        assertFileRefused(zipOf(dir.resolve("view.ckpt"), oneTensor(6, 4, new long[] {2, 2}, new long[] {2, 1}), Map.of("0", floats(0, 1, 2, 3, 4, 5))),
                "reaches element 8 of storage '0', which holds 6");
        // shapes whose element count overflows
        assertFileRefused(zipOf(dir.resolve("huge.ckpt"), oneTensor(6, 0, new long[] {1L << 40, 1L << 40}, new long[] {1L << 40, 1}),
                Map.of("0", floats(0, 1, 2, 3, 4, 5))), "more elements than a long can count");
        // a storage declaring more elements than its member holds, or than any file
        assertFileRefused(zipOf(dir.resolve("short.ckpt"), oneTensor(1L << 40, 0, new long[] {2}, new long[] {1}), Map.of("0", floats(1, 2))),
                "holds 8 bytes, but the pickle declares 1099511627776 elements of F32");
        assertFileRefused(zipOf(dir.resolve("overflow.ckpt"), oneTensor(1L << 62, 0, new long[] {2}, new long[] {1}), Map.of("0", floats(1, 2))),
                "declares 4611686018427387904 elements, more than a file can hold");
        assertFileRefused(zipOf(dir.resolve("nodata.ckpt"), oneTensor(2, 0, new long[] {2}, new long[] {1}), Map.of()),
                "storage '0' has no member nodata/data/0");
        // a zip whose central directory points past the end of the file
        Path good = zipOf(dir.resolve("good.ckpt"), oneTensor(2, 0, new long[] {2}, new long[] {1}), Map.of("0", floats(1, 2)));
        assertEquals(2, TorchCheckpoint.open(good).shape("w")[0]);
        byte[] bytes = Files.readAllBytes(good);
        int central = centralEntry(bytes, "good/data/0");
        byte[] pastEnd = bytes.clone();
        putInt(pastEnd, central + 20, 1 << 30);
        putInt(pastEnd, central + 24, 1 << 30);
        assertFileRefused(Files.write(dir.resolve("past-end.ckpt"), pastEnd), "its 1073741824 bytes of data at byte");
        byte[] offset = bytes.clone();
        putInt(offset, central + 42, 1 << 30);
        assertFileRefused(Files.write(dir.resolve("offset.ckpt"), offset), "its local header offset 1073741824 or sizes are outside the file");
        assertFileRefused(Files.write(dir.resolve("cut.ckpt"), java.util.Arrays.copyOf(bytes, bytes.length - 30)),
                "no end of central directory (truncated or not a zip file)");
        // legacy: the storages must follow the pickles
        Path legacy = dir.resolve("legacy.ckpt");
        try (Scope s = Scope.inference()) {
            TorchSaveWriter.legacy(legacy, twoTensors(), TorchSaveWriter.Layout.PLAIN);
        }
        byte[] whole = Files.readAllBytes(legacy);
        assertFileRefused(Files.write(dir.resolve("legacy-cut.ckpt"), java.util.Arrays.copyOf(whole, whole.length - 2)),
                "storage '91' (4 bytes at byte");
        assertFileRefused(Files.write(dir.resolve("noise.ckpt"), new byte[] {1, 2, 3, 4, 5}), "not a PyTorch checkpoint");
        assertFileRefused(Files.write(dir.resolve("empty.ckpt"), new byte[0]), "not a PyTorch checkpoint: the file is empty");
    }

    @Test
    void aZipBombIsRefusedWithoutInflatingIt() throws IOException {
        // data.pkl deflated: 100 MB of one byte (about 100 KB compressed), over the pickle size limit
        Path bomb = dir.resolve("bomb.ckpt");
        try (var zip = new java.util.zip.ZipOutputStream(Files.newOutputStream(bomb))) {
            zip.putNextEntry(new java.util.zip.ZipEntry("bomb/data.pkl"));
            byte[] block = new byte[1 << 20];
            for (int i = 0; i < 100; i++) zip.write(block);
            zip.closeEntry();
        }
        assertTrue(Files.size(bomb) < 1 << 20, Files.size(bomb) + " bytes");
        assertFileRefused(bomb, "a pickle of 104857600 bytes (over the 67108864-byte limit");
        // the same, claiming to be small: inflation stops at the declared size
        byte[] bytes = Files.readAllBytes(bomb);
        putInt(bytes, centralEntry(bytes, "bomb/data.pkl") + 24, 1000);
        assertFileRefused(Files.write(dir.resolve("liar.ckpt"), bytes), "inflates to more than the 1000 bytes its directory entry declares");
        // a deflated data.pkl of honest size is read
        Path deflated = dir.resolve("deflated.ckpt");
        try (var zip = new java.util.zip.ZipOutputStream(Files.newOutputStream(deflated))) {
            zip.putNextEntry(new java.util.zip.ZipEntry("deflated/data.pkl"));
            zip.write(oneTensor(2, 0, new long[] {2}, new long[] {1}));
            zip.closeEntry();
            java.util.zip.ZipEntry data = new java.util.zip.ZipEntry("deflated/data/0");
            zip.putNextEntry(data);
            zip.write(floats(1, 2));
            zip.closeEntry();
        }
        assertFileRefused(deflated, "storage member deflated/data/0 is compressed (method 8)");
    }

    // ---- helpers --------------------------------------------------------------------------------

    /** {'w': a float32 tensor of storage '0'}. */
    private static byte[] oneTensor(long storageNumel, long offset, long[] shape, long[] stride) {
        PickleWriter p = new PickleWriter().proto(2).op('}').str("w");
        TorchSaveWriter.tensor(p, "0", StorageType.FLOAT, storageNumel, offset, shape, stride, false, false);
        return p.op('s').stop().bytes();
    }

    private static byte[] floats(float... values) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4 * values.length).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (float v : values) b.putFloat(v);
        return b.array();
    }

    /** A torch.save-style zip: data.pkl and the given storages, all stored. */
    static Path zipOf(Path file, byte[] pickle, Map<String, byte[]> storages) throws IOException {
        String archive = file.getFileName().toString().replaceAll("\\.[^.]*$", "");
        try (var zip = new java.util.zip.ZipOutputStream(Files.newOutputStream(file))) {
            stored(zip, archive + "/data.pkl", pickle);
            for (var e : storages.entrySet()) stored(zip, archive + "/data/" + e.getKey(), e.getValue());
            stored(zip, archive + "/version", "3\n".getBytes());
        }
        return file;
    }

    private static void stored(java.util.zip.ZipOutputStream zip, String name, byte[] bytes) throws IOException {
        java.util.zip.ZipEntry e = new java.util.zip.ZipEntry(name);
        e.setMethod(java.util.zip.ZipEntry.STORED);
        e.setSize(bytes.length);
        java.util.zip.CRC32 crc = new java.util.zip.CRC32();
        crc.update(bytes);
        e.setCrc(crc.getValue());
        zip.putNextEntry(e);
        zip.write(bytes);
        zip.closeEntry();
    }

    /** The offset of the central directory entry named {@code name}. */
    private static int centralEntry(byte[] zip, String name) {
        byte[] n = name.getBytes();
        for (int i = 0; i + 46 + n.length <= zip.length; i++) {
            if (zip[i] == 'P' && zip[i + 1] == 'K' && zip[i + 2] == 1 && zip[i + 3] == 2
                    && java.util.Arrays.equals(zip, i + 46, i + 46 + n.length, n, 0, n.length)) {
                return i;
            }
        }
        throw new AssertionError("no central entry " + name);
    }

    private static void putInt(byte[] b, int at, int v) {
        java.nio.ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(at, v);
    }

    private static void assertPickleRefused(PickleWriter pickle, String... expected) {
        PickleException e = assertThrows(PickleException.class, () -> Unpickler.load(pickle.bytes(), "test.pkl", pid -> pid));
        assertTrue(e.getMessage().startsWith("test.pkl: "), e.getMessage());
        for (String part : expected) assertTrue(e.getMessage().contains(part), e.getMessage());
    }

    private static void assertFileRefused(Path file, String... expected) {
        assertRefused(file, expected);
    }

    private static void assertRefused(Path file, String... expected) {
        PickleException e = assertThrows(PickleException.class, () -> TorchCheckpoint.open(file));
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        for (String part : Stream.of(expected).toList()) assertTrue(e.getMessage().contains(part), e.getMessage());
    }
}
