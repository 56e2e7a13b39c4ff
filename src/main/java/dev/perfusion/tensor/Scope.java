package dev.perfusion.tensor;

import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;

import java.util.function.Supplier;

/**
 * Native memory scope: every tensor created while a scope is open is freed when it closes, unless it was
 * {@link #keep kept}. Open one per denoising step, per training step, per request.
 */
public final class Scope implements AutoCloseable {
    static {
        Libtorch.ensureLoaded(); // a scope's NoGradGuard is the first libtorch object some callers make
    }

    private final PointerScope pointers;
    private final NoGradGuard noGrad;

    private Scope(boolean noGrad) {
        this.pointers = new PointerScope();
        this.noGrad = noGrad ? new NoGradGuard() : null;
    }

    /** A scope in which autograd records operations (training). */
    public static Scope open() { return new Scope(false); }

    /** A scope with autograd off (inference): faster and keeps no graph. */
    public static Scope inference() { return new Scope(true); }

    /** Lets {@code p} outlive this scope (and any enclosing one); it is then freed by the GC or by close(). */
    public static <P extends Pointer> P keep(P p) {
        p.retainReference();
        return p;
    }

    /**
     * Keeps {@code next} in place of {@code previous}, a tensor kept earlier and no longer needed (a loop's running
     * state): without the release every replaced state would stay allocated until the process ends.
     */
    public static Tensor replaceKept(Tensor previous, Tensor next) {
        keep(next);
        if (previous != null && previous != next) previous.releaseReference();
        return next;
    }

    /**
     * Runs one block of a forward pass in its own scope and hands only its output to the enclosing scope, so the
     * block's intermediate tensors are freed at once instead of when the whole step ends (autograd keeps what
     * backward needs through its own references).
     */
    public static Tensor within(Supplier<Tensor> block) {
        Tensor result;
        try (PointerScope inner = new PointerScope()) {
            result = keep(block.get());
        }
        return adopt(result);
    }

    /**
     * Hands {@code kept}, a tensor {@link #keep kept} past a scope that has closed since, to the scope open now (which
     * then frees it), instead of leaving it to the GC.
     */
    public static Tensor adopt(Tensor kept) {
        PointerScope current = PointerScope.getInnerScope();
        if (current != null) {
            current.attach(kept);
            kept.releaseReference();
        }
        return kept;
    }

    /**
     * Releases each of {@code kept}, tensors {@link #keep kept} and used no more, once however often it appears (a
     * tensor shared by several holders would otherwise be released twice).
     */
    public static void releaseEach(java.util.Collection<Tensor> kept) {
        java.util.Set<Tensor> distinct = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        distinct.addAll(kept);
        distinct.forEach(Tensor::releaseReference);
    }

    /**
     * Frees now the native memory of every tensor no longer referenced that no scope freed (a model's weights): JavaCPP
     * frees such a tensor only when the GC finds its Java object unreachable, and a process whose heap barely moves
     * (the web app between jobs) may not collect for hours, while the tensors' gigabytes stay allocated.
     */
    public static void freeUnreachable() {
        System.gc();
        Pointer.deallocateReferences();
    }

    @Override
    public void close() {
        if (noGrad != null) noGrad.close();
        pointers.close();
    }
}
