package dev.perfusion.fuzz;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.perfusion.perfusion.ConceptFile;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@link ConceptFile#load} on any bytes (a concept is a safetensors file with required metadata and tensors).
 * Seeds: concepts written by {@link ConceptFile#save} (two layers, embedding-only) and ones lacking a field.
 */
class ConceptFileFuzzTest {
    @FuzzTest(maxDuration = "2m")
    @DictionaryEntries({"\"format\"", "\"perfusion-concept\"", "\"format_version\"", "\"layers\"", "\"embedding\"",
            "\"i_star\"", "\"layers.0.key_target\"", "\"layers.1.value_target\"", "\"default_beta\"", "\"default_tau\"",
            "\"word\"", "\"supercategory\"", "\"training.method\"", "\"ungated-rome\"", "\"NaN\"", "\"1e309\""})
    void load(byte[] bytes) throws Exception {
        Path file = Readers.file("concept.safetensors", bytes);
        try (Scope s = Scope.inference()) {
            ConceptFile c = Readers.readOrRefuse(file.toString(), () -> ConceptFile.load(file));
            if (c == null) return;
            assertEquals(c.textDim(), Ops.shape(c.iStar())[0], "i* has the embedding's width");
            long[] dims = c.layerDims();
            for (int l = 0; l < c.layerCount(); l++) assertEquals(dims[l], Ops.shape(c.edit().values().get(l))[0]);
            // load keeps its tensors past the scope; free them here rather than leave thousands to the GC
            c.embedding().close();
            c.iStar().close();
            for (Tensor t : c.edit().keys()) t.close();
            for (Tensor t : c.edit().values()) t.close();
        } finally {
            Readers.delete(file);
        }
    }
}
