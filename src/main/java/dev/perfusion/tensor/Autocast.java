package dev.perfusion.tensor;

import org.bytedeco.pytorch.global.torch;

import java.util.function.Supplier;

/**
 * libtorch's CPU autocast, for mixed-precision training: inside {@link #bf16}, convolutions and matrix products take
 * their fp32 inputs and weights in bf16 and give bf16 results, while the weights themselves, their gradients and the
 * optimizer stay fp32 (each weight is cast per use, and its gradient flows back through the cast in fp32). The switch
 * is per thread, so each worker of a training step turns it on for its own forward pass.
 */
public final class Autocast {
    private Autocast() {}

    /** {@code forward} with the CPU's matrix products and convolutions in bf16 on this thread. */
    public static <T> T bf16(Supplier<T> forward) {
        boolean before = torch.is_autocast_enabled(torch.DeviceType.CPU);
        torch.ScalarType type = torch.get_autocast_dtype(torch.DeviceType.CPU);
        torch.set_autocast_dtype(torch.DeviceType.CPU, torch.ScalarType.BFloat16);
        torch.set_autocast_enabled(torch.DeviceType.CPU, true);
        try {
            return forward.get();
        } finally {
            torch.set_autocast_enabled(torch.DeviceType.CPU, before);
            torch.set_autocast_dtype(torch.DeviceType.CPU, type);
            if (!before) torch.clear_cache(); // the casts autocast kept of leaf weights
        }
    }

    /**
     * {@code body} with autocast paused on this thread: for what must stay fp32 under it (autocast would cast an fp32
     * attention back to bf16, whose CPU backward is 5x slower).
     */
    public static <T> T paused(Supplier<T> body) {
        if (!torch.is_autocast_enabled(torch.DeviceType.CPU)) return body.get();
        torch.set_autocast_enabled(torch.DeviceType.CPU, false);
        try {
            return body.get();
        } finally {
            torch.set_autocast_enabled(torch.DeviceType.CPU, true);
        }
    }
}
