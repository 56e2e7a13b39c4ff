package dev.perfusion.pipeline;

import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.unet.UNet2DConditionModel;
import org.bytedeco.pytorch.Tensor;

import java.util.List;
import java.util.function.Consumer;

/** Turns prompts into the text encodings [B, T, D] the UNet's cross-attention reads. */
@FunctionalInterface
public interface PromptEncoder {
    Tensor encode(List<String> prompts, Consumer<String> warnings);

    /**
     * The first of a picture's {@code steps} denoising steps when they are drawn otherwise than the rest, or null (the
     * default: every step reads {@link #encode}'s encodings). Learned concepts use it to leave a picture's layout to
     * the base model ({@code AppliedConcepts}).
     *
     * @param prompts the prompts as {@link #encode} gets them (the negative prompts first when guided)
     */
    default EarlySteps earlySteps(List<String> prompts, int steps, Consumer<String> warnings) { return null; }

    /** The picture that read {@code encodings} (from {@link #encode}) is drawn: what the encoder keeps for them can go. */
    default void drawn(Tensor encodings) {}

    /** The tokenizer that reads the prompts: the model's, or one that knows learned concepts' words. */
    default ClipTokenizer tokenizer(StableDiffusion sd) { return sd.tokenizer; }

    /** The first {@code count} denoising steps of a picture and how the UNet predicts the noise in them. */
    interface EarlySteps {
        int count();

        /** The noise prediction at one of these steps, for the latents input (doubled when guided) and timestep. */
        Tensor predict(UNet2DConditionModel unet, Tensor latents, Tensor timestep);
    }
}
