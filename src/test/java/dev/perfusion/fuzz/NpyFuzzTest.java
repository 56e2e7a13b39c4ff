package dev.perfusion.fuzz;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.perfusion.io.Npy;
import dev.perfusion.tensor.Ops;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** {@link Npy#read} on any bytes. Seeds: arrays written by {@link Npy#writeFloats} and hand-made f8/i8 headers. */
class NpyFuzzTest {
    @FuzzTest(maxDuration = "2m")
    @DictionaryEntries({"'descr'", "'<f4'", "'<f8'", "'<i8'", "'fortran_order'", "False", "True", "'shape'", "(", ",)"})
    void read(byte[] bytes) throws Exception {
        Path file = Readers.file("array.npy", bytes);
        try {
            Npy.Array a = Readers.readOrRefuse(file.toString(), () -> Npy.read(file));
            if (a != null) assertEquals(Ops.numel(a.shape()), a.asDoubles().length, "values fill the shape");
        } finally {
            Readers.delete(file);
        }
    }
}
