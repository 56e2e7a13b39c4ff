package dev.perfusion.pipeline;

import dev.perfusion.io.layout.ModelSource;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.util.Progress;
import dev.perfusion.world.Bundled;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** A batch that repeats prompts encodes each once and gets the same rows as encoding every prompt. */
class DistinctPromptsTest {
    @Test
    void eachDistinctPromptOnceInFirstSeenOrder() {
        DistinctPrompts batch = DistinctPrompts.of(List.of("", "", "a cat", "", "a dog", "a cat"));
        assertEquals(List.of("", "a cat", "a dog"), batch.distinct());
        assertArrayEquals(new long[] {0, 0, 1, 0, 2, 1}, batch.rows());
        assertFalse(batch.allDistinct());
        assertTrue(DistinctPrompts.of(List.of("a", "b")).allDistinct());
    }

    @Test
    void aRepeatingBatchIsEncodedAsEveryPromptWouldBe() throws IOException {
        StableDiffusion sd = StableDiffusion.load(Bundled.model(), ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float, Progress.NONE);
        List<String> prompts = List.of("", "", "a red cat on the grass", "", "a teddy on the beach", "a red cat on the grass");
        try (Scope s = Scope.inference()) {
            Tensor batch = sd.encodePrompts(prompts, w -> {});
            assertArrayEquals(new long[] {6, sd.tokenizer.maxLength(), sd.textEncoder.config().hiddenSize()}, Ops.shape(batch));
            for (int i = 0; i < prompts.size(); i++) {
                Tensor alone = sd.encodePrompts(List.of(prompts.get(i)), w -> {});
                assertTrue(Ops.maxAbsDiff(batch.narrow(0, i, 1), alone) < 1e-5, "row " + i + " (\"" + prompts.get(i) + "\")");
            }
            assertTrue(Ops.maxAbsDiff(batch.narrow(0, 2, 1), batch.narrow(0, 4, 1)) > 0.01, "different prompts, different rows");
        }
    }
}
