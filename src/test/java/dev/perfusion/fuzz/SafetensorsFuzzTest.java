package dev.perfusion.fuzz;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.perfusion.io.Safetensors;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * {@link Safetensors#open} and reading its tensors, on any bytes: the header length, the JSON header, dtypes, shapes
 * and offsets. Seeds: small files written by {@link Safetensors#write} (F32, F16, with metadata, a scalar, an empty
 * tensor) and hand-made headers with the other dtypes.
 */
class SafetensorsFuzzTest {
    @FuzzTest(maxDuration = "2m")
    @DictionaryEntries({"\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"__metadata__\"", "\"F32\"", "\"F16\"", "\"BF16\"",
            "\"F64\"", "\"I64\"", "\"I32\"", "\"U8\"", "\"BOOL\"", "\"F8_E4M3\"", "\"U64\""})
    void open(byte[] bytes) throws Exception {
        Path file = Readers.file("weights.safetensors", bytes);
        try (Scope s = Scope.inference()) {
            Safetensors st = Readers.readOrRefuse(file.toString(), () -> Safetensors.open(file));
            if (st == null) return;
            int read = 0;
            for (String name : st.keys()) {
                if (read++ == 8) break;
                long[] shape = st.shape(name);
                var tensor = Readers.readOrRefuse(file.toString(), () -> st.get(name));
                if (tensor != null) assertArrayEquals(shape, Ops.shape(tensor), name);
            }
        } finally {
            Readers.delete(file);
        }
    }
}
