package dev.perfusion.perfusion;

import dev.perfusion.io.Safetensors;
import dev.perfusion.tensor.Ops;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The concept file records what the concept's edit is, whichever method made it. */
class ConceptFileTest {
    static ConceptFile concept(ProjectionEdit edit, Map<String, String> settings) {
        Tensor v = Ops.fromFloats(new float[] {0.1f, -0.2f, 0.3f}, 3);
        return new ConceptFile("my-cat", "cat", v, v, edit, 0.7, 0.15, "unet0", "text0", settings);
    }

    @Test
    void everyKindOfEditRoundTrips(@TempDir Path tmp) throws IOException {
        Tensor target = Ops.fromFloats(new float[] {1, 2}, 2), weight = Ops.fromFloats(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        List<ProjectionEdit> edits = List.of(ProjectionEdit.none(),
                new ProjectionEdit(ProjectionEdit.Kind.GATED_RANK_ONE, List.of(target), List.of(target)),
                new ProjectionEdit(ProjectionEdit.Kind.RANK_ONE, List.of(target), List.of(target)),
                new ProjectionEdit(ProjectionEdit.Kind.WEIGHTS, List.of(weight), List.of(weight)));
        for (ProjectionEdit edit : edits) {
            Path file = tmp.resolve(edit.kind().id + ".safetensors");
            concept(edit, Map.of()).save(file);
            ConceptFile loaded = ConceptFile.load(file);
            assertEquals(edit.kind(), loaded.edit().kind());
            assertEquals(edit.layerCount(), loaded.layerCount());
            for (int l = 0; l < edit.layerCount(); l++) assertEquals(0.0, Ops.maxAbsDiff(edit.values().get(l), loaded.edit().values().get(l)));
        }
        assertEquals(Map.of("embedding", 0, "i_star", 0, "layers.0.key_weight", 0, "layers.0.value_weight", 0).keySet(),
                Safetensors.open(tmp.resolve("weights.safetensors")).keys().stream().collect(java.util.stream.Collectors.toSet()));
    }

    @Test
    void aFileFromBeforeTheEditWasRecordedStillSaysItsKind(@TempDir Path tmp) throws IOException {
        Tensor v = Ops.fromFloats(new float[] {0.1f, -0.2f, 0.3f}, 3), t = Ops.fromFloats(new float[] {1, 2}, 2);
        for (String method : List.of("perfusion", "ungated-rome")) {
            Map<String, Tensor> tensors = new LinkedHashMap<>(Map.of("embedding", v, "i_star", v, "layers.0.key_target", t, "layers.0.value_target", t));
            Map<String, String> meta = new LinkedHashMap<>(Map.of("format", "perfusion-concept", "format_version", "1", "word", "my-cat",
                    "supercategory", "cat", "base_model_hash", "u", "text_encoder_hash", "t", "default_beta", "0.7", "default_tau", "0.15",
                    "layers", "1"));
            meta.put("training.method", method);
            Path file = tmp.resolve(method + ".safetensors");
            Safetensors.write(file, tensors, meta, Safetensors.StoredType.F32);
            assertEquals(method.equals("perfusion") ? ProjectionEdit.Kind.GATED_RANK_ONE : ProjectionEdit.Kind.RANK_ONE,
                    ConceptFile.load(file).edit().kind());
            // a negative layer count passed as a gated edit of no layers, refused without the file's name
            meta.put("layers", "-1");
            Path negative = tmp.resolve(method + "-negative.safetensors");
            Safetensors.write(negative, tensors, meta, Safetensors.StoredType.F32);
            IOException e = assertThrows(IOException.class, () -> ConceptFile.load(negative));
            assertEquals(negative + ": metadata 'layers' is -1; a concept edits 0 or more layers", e.getMessage());
        }
    }

    /**
     * A refused file frees what was read of it at once: the web app refuses uploads for hours without collecting
     * garbage, and each refusal kept the file's tensors and the finiteness check's temporaries until a collection.
     */
    @Test
    void aRefusedFileLeavesNoTensorsBehind(@TempDir Path tmp) throws IOException {
        Tensor v = Ops.fromFloats(new float[] {Float.NaN, -0.2f, 0.3f}, 3), t = Ops.fromFloats(new float[] {1, 2}, 2);
        Map<String, String> meta = new LinkedHashMap<>(Map.of("format", "perfusion-concept", "format_version", "1", "word", "my-cat",
                "supercategory", "cat", "base_model_hash", "u", "text_encoder_hash", "t", "default_beta", "0.7", "default_tau", "0.15",
                "layers", "1"));
        Path file = tmp.resolve("broken.safetensors");
        Safetensors.write(file, Map.of("embedding", v, "i_star", v, "layers.0.key_target", t, "layers.0.value_target", t), meta, Safetensors.StoredType.F32);
        assertThrows(IOException.class, () -> ConceptFile.load(file)); // the first read loads what stays loaded
        long before = Pointer.totalCount();
        for (int i = 0; i < 20; i++) {
            IOException e = assertThrows(IOException.class, () -> ConceptFile.load(file));
            assertTrue(e.getMessage().contains("holds NaN or infinite values"), e.getMessage());
        }
        assertTrue(Pointer.totalCount() - before < 20, "native objects left by 20 refused reads: " + (Pointer.totalCount() - before));
    }

    @Test
    void anEditOfTheWrongShapeIsRefusedWithTheLayerAndTheKind() {
        Tensor vector = Ops.fromFloats(new float[] {1, 2}, 2);
        var e = assertThrows(IllegalArgumentException.class,
                () -> new ProjectionEdit(ProjectionEdit.Kind.WEIGHTS, List.of(vector), List.of(vector)));
        assertEquals("layer 0: a 'weights' edit holds tensors of rank 2, got [2]", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new ProjectionEdit(ProjectionEdit.Kind.GATED_RANK_ONE, List.of(), List.of()));
        assertEquals("the value target o*_V of layer 3", ProjectionEdit.meaning("layers.3.value_target"));
        assertEquals("the word embedding v*", ProjectionEdit.meaning("embedding"));
    }
}
