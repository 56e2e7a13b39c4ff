package dev.perfusion.tensor;

import org.bytedeco.pytorch.global.torch;

/**
 * The CPU threads libtorch computes with. libtorch chooses its own count at start-up, and on some two-core VMs it
 * chooses one, so every command sets it: all cores unless told otherwise. OpenBLAS, which libtorch's fp32 matmuls
 * call, keeps a pool of its own, sized once when it loads ({@code OPENBLAS_NUM_THREADS}, else every core), and
 * picks its kernels by the CPU unless {@code OPENBLAS_CORETYPE} forces a family.
 */
public final class Threads {
    private Threads() {}

    public static int cores() { return Runtime.getRuntime().availableProcessors(); }

    /** Sets libtorch's intra-op thread count (convolutions, attention, element-wise work). */
    public static void use(int threads) {
        if (threads < 1) throw new IllegalArgumentException("the thread count must be at least 1, got " + threads);
        Libtorch.ensureLoaded();
        torch.set_num_threads(threads);
    }

    /** What each backend uses, for benchmarks: thread counts and the BLAS kernels' CPU family. */
    public static String describe() {
        String blasThreads = System.getenv("OPENBLAS_NUM_THREADS");
        String coreType = System.getenv("OPENBLAS_CORETYPE");
        return "libtorch " + torch.get_num_threads() + " intra-op, " + torch.get_num_interop_threads() + " inter-op (of "
                + cores() + " cores); OpenBLAS " + (blasThreads != null ? blasThreads + " (OPENBLAS_NUM_THREADS)" : "all cores")
                + ", kernels " + (coreType != null && !coreType.isBlank() ? "forced to " + coreType + " (OPENBLAS_CORETYPE)" : "chosen for this CPU");
    }
}
