package dev.perfusion.text;

import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

import java.util.Arrays;
import java.util.List;

/** The {@code hidden_act} values of transformers' ACT2FN that CLIP text encoders use. */
public enum ClipActivation {
    /** OpenAI CLIP (SD 1.x): x * sigmoid(1.702 x). */
    QUICK_GELU(List.of("quick_gelu")),
    /** OpenCLIP (SD 2.x): the exact, erf-based GELU. */
    GELU(List.of("gelu")),
    /** The tanh approximation; transformers' NewGELU and PyTorch's approximate="tanh" are the same formula. */
    GELU_TANH(List.of("gelu_new", "gelu_pytorch_tanh"));

    private final List<String> names;

    ClipActivation(List<String> names) {
        this.names = names;
    }

    public static ClipActivation named(String name) {
        for (ClipActivation a : values()) if (a.names.contains(name)) return a;
        throw new IllegalArgumentException("text encoder config: unsupported hidden_act '" + name + "' (supported: "
                + String.join(", ", Arrays.stream(values()).flatMap(a -> a.names.stream()).toList()) + ")");
    }

    public Tensor apply(Tensor x) {
        return switch (this) {
            case QUICK_GELU -> Ops.quickGelu(x);
            case GELU -> Ops.gelu(x);
            case GELU_TANH -> Ops.geluTanh(x);
        };
    }
}
