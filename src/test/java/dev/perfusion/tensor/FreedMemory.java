package dev.perfusion.tensor;

import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

/** Test aid for kernels that read memory they never wrote. */
public final class FreedMemory {
    private FreedMemory() {}

    /**
     * Frees NaN-filled blocks of many sizes, so that the allocator hands their memory to the next tensors: a kernel
     * that reads memory it never wrote then sees NaN, as it does by chance after a freed attention mask.
     */
    public static void poison(int round) {
        try (Scope s = Scope.inference()) {
            for (int k = 0; k < 12; k++) {
                torch.full(new long[] {1L << (10 + (round + k) % 12)}, new Scalar(Float.NaN),
                        new TensorOptions(torch.ScalarType.Float));
            }
        }
    }
}
