package dev.perfusion.fuzz;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.perfusion.io.pickle.TorchCheckpoint;
import dev.perfusion.io.pickle.Unpickler;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * The PyTorch checkpoint readers on any bytes: {@link TorchCheckpoint#open} (the zip directory, data.pkl through the
 * restricted unpickler, storages located and sized; the legacy format's pickles and storage listing) and reading its
 * tensors, and {@link Unpickler} alone on a bare pickle stream. Seeds: files in both formats written the way
 * torch.save writes them (plain and Lightning-style dicts, views sharing a storage, several dtypes, protocol 4), and
 * refused ones (a call of builtins.eval, a storage past its member's end).
 */
class TorchCheckpointFuzzTest {
    @FuzzTest(maxDuration = "2m")
    @DictionaryEntries({"data.pkl", "/data/", "byteorder", "little", "storage", "cpu", "state_dict", "model_ema.",
            "torch._utils", "_rebuild_tensor_v2", "_rebuild_parameter", "collections", "OrderedDict", "FloatStorage",
            "HalfStorage", "BFloat16Storage", "LongStorage", "PK"})
    void open(byte[] bytes) throws Exception {
        Path file = Readers.file("model.ckpt", bytes);
        try (Scope s = Scope.inference()) {
            TorchCheckpoint ckpt = Readers.readOrRefuse(file.toString(), () -> TorchCheckpoint.open(file));
            if (ckpt == null) return;
            int read = 0;
            for (String name : ckpt.keys()) {
                if (read++ == 8) break;
                long[] shape = ckpt.shape(name);
                var tensor = Readers.readOrRefuse(file.toString(), () -> ckpt.get(name));
                if (tensor != null) assertArrayEquals(shape, Ops.shape(tensor), name);
            }
        } finally {
            Readers.delete(file);
        }
    }

    @FuzzTest(maxDuration = "2m")
    @DictionaryEntries({"torch._utils", "_rebuild_tensor_v2", "collections", "OrderedDict", "torch", "FloatStorage",
            "builtins", "eval", "storage"})
    void pickle(byte[] bytes) throws Exception {
        Readers.readOrRefuse("fuzz.pkl", () -> Unpickler.load(bytes, "fuzz.pkl", pid -> pid));
    }
}
