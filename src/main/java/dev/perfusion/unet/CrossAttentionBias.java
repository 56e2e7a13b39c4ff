package dev.perfusion.unet;

import org.bytedeco.pytorch.Tensor;

import java.util.function.Supplier;

/**
 * Logits added to every cross-attention of the UNet on one thread while {@link #during} runs: how a picture's pixels
 * are steered towards or away from some of the prompt's words (per thread, so pictures drawn side by side keep theirs).
 */
@FunctionalInterface
public interface CrossAttentionBias {
    /**
     * The additive logits [batch, 1, queries, keys] for a cross-attention whose queries are the pixels of one of the
     * UNet's levels (the level follows from their count), or null to leave it alone.
     */
    Tensor logits(long batch, long queries, long keys);

    /** {@code body} with every cross-attention of this thread biased by {@code bias} (null: none). */
    static <T> T during(CrossAttentionBias bias, Supplier<T> body) {
        CrossAttentionBias outer = Current.BIAS.get();
        Current.BIAS.set(bias);
        try {
            return body.get();
        } finally {
            Current.BIAS.set(outer);
        }
    }

    /** This thread's bias, or null (most passes: asked before any shape is read). */
    static CrossAttentionBias current() {
        return Current.BIAS.get();
    }

    final class Current {
        private static final ThreadLocal<CrossAttentionBias> BIAS = new ThreadLocal<>();

        private Current() {}
    }
}
