package dev.perfusion.pipeline;

import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A batch's prompts, each distinct one once, and which of them each row of the batch is. Batches repeat prompts: a
 * guided picture batch its negative prompt once per picture, a concept's training step the few training templates
 * its vocabulary holds; encoding each distinct prompt once and gathering the rows gives the same encodings (each row
 * is computed on its own in the text encoder) and, through the gather, the same gradients, for a fraction of the work.
 */
public record DistinctPrompts(List<String> distinct, long[] rows) {

    public static DistinctPrompts of(List<String> prompts) {
        Map<String, Integer> index = new HashMap<>();
        List<String> distinct = new ArrayList<>();
        long[] rows = new long[prompts.size()];
        for (int i = 0; i < rows.length; i++) {
            rows[i] = index.computeIfAbsent(prompts.get(i), p -> {
                distinct.add(p);
                return distinct.size() - 1;
            });
        }
        return new DistinctPrompts(List.copyOf(distinct), rows);
    }

    /** Whether every prompt of the batch is distinct (the batch is its own distinct list). */
    public boolean allDistinct() {
        return distinct.size() == rows.length;
    }

    /** The batch's rows of {@code perDistinct}, whose rows are the distinct prompts' in order (an autograd gather). */
    public Tensor batchRows(Tensor perDistinct) {
        if (allDistinct()) return perDistinct;
        return perDistinct.index_select(0, Ops.fromLongs(rows, rows.length).to(perDistinct.device(), torch.ScalarType.Long));
    }
}
