package dev.perfusion.fuzz;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.perfusion.io.StateDict;
import dev.perfusion.io.layout.ModelSource;
import dev.perfusion.io.layout.ResolvedModel;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A single-file checkpoint on any bytes: {@link ModelSource#resolve} recognises the family from tensor names and
 * shapes and maps the LDM / OpenCLIP names onto diffusers names (layer numbers are parsed out of the names). Seeds:
 * small SD 1.x- and 2.x-style files (a few tensors of each component) written by the safetensors writer, and the same
 * as PyTorch zip checkpoints (read by content: the file's name says safetensors).
 */
class CheckpointFuzzTest {
    @FuzzTest(maxDuration = "2m")
    @DictionaryEntries({"model.diffusion_model.", "first_stage_model.", "cond_stage_model.transformer.text_model.",
            "cond_stage_model.model.", "encoder.layers.", "transformer.resblocks.", "input_blocks.", "output_blocks.",
            "conditioner.embedders.", ".weight", "\"F16\"", "\"shape\"", "\"data_offsets\""})
    void singleFile(byte[] bytes) throws Exception {
        Path file = Readers.file("model.safetensors", bytes);
        try {
            ResolvedModel m = Readers.readOrRefuse(file.toString(), () -> ModelSource.resolve(file));
            if (m == null) return;
            for (StateDict part : List.of(m.unetWeights(), m.vaeWeights(), m.textEncoderWeights())) {
                for (String key : part.keys()) assertEquals(part.shape(key).length, part.shape(key).length, key);
            }
        } finally {
            Readers.delete(file);
        }
    }
}
