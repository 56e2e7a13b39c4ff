package dev.perfusion.pipeline;

import org.bytedeco.pytorch.Tensor;

import java.util.List;
import java.util.function.Consumer;

/** Turns prompts into the text encodings [B, T, D] the UNet's cross-attention reads. */
@FunctionalInterface
public interface PromptEncoder {
    Tensor encode(List<String> prompts, Consumer<String> warnings);
}
