package dev.perfusion.perfusion;

import dev.perfusion.nn.Linear;
import dev.perfusion.nn.Projection;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Perfusion's edited cross-attention K or V projection (paper eq. 3):
 * <pre>
 *   h_n = W e_n⊥ + Σ_j g_{n,j} o*_j
 * </pre>
 * W is the layer's original bias-free weight; e_n⊥ and the gates g_{n,j} come from the {@link ConceptGate} shared
 * by every edited layer (computed once per prompt); only o* is gated, the orthogonal term is not. For the KEY
 * projection o*_K = W_K i_super is locked; for the VALUE projection o*_V is a trainable leaf tensor.
 *
 * <p>The UNet calls {@link #forward} with the prompt encodings E as for any {@link Projection}. Under global key
 * locking ({@link ConceptGate#lockKeys}) a KEY projection reads the supercategory-prompt encodings instead.
 * With autograd off the output for a prompt is memoised, so denoising steps after the first cost nothing here.
 */
public final class GatedRankOneProjection implements Projection {
    /** Which cross-attention projection this is; only keys follow global key locking. */
    public enum Role { KEY, VALUE }

    private final Projection original;
    private final ConceptGate gate;
    private final Role role;
    private final List<Tensor> targetOutputs;

    /**
     * @param original      the layer's K or V projection (bias-free), whose weight W [out, D] is kept as is
     * @param targetOutputs o*_j [out] for each concept of {@code gate}, in the gate's concept order; the tensors
     *                      themselves are used (an optimiser's in-place updates of a trainable o*_V are seen)
     */
    public GatedRankOneProjection(Projection original, ConceptGate gate, Role role, List<Tensor> targetOutputs) {
        if (original instanceof Linear linear && linear.bias != null) {
            throw new IllegalArgumentException("Perfusion edits bias-free K/V projections; this one has a bias");
        }
        long[] w = Ops.shape(original.weight());
        if (w.length != 2 || w[1] != gate.dim()) {
            throw new IllegalArgumentException("projection weight " + Ops.shapeString(original.weight())
                    + " does not take " + gate.dim() + "-dim text encodings");
        }
        if (targetOutputs.size() != gate.conceptCount()) {
            throw new IllegalArgumentException(targetOutputs.size() + " target outputs for " + gate.conceptCount() + " concepts");
        }
        List<Tensor> targets = new ArrayList<>();
        for (Tensor t : targetOutputs) {
            if (t.dim() != 1 || Ops.shape(t)[0] != w[0]) {
                throw new IllegalArgumentException("target output o* " + Ops.shapeString(t) + " must be [" + w[0] + "]");
            }
            targets.add(Scope.keep(new Tensor(t)));
        }
        this.original = original;
        this.gate = gate;
        this.role = role;
        this.targetOutputs = Collections.unmodifiableList(targets);
    }

    /** o*_K = W_K i_super: the locked key target, a constant (at least fp32, as the trained targets). */
    public static Tensor lockedKeyTarget(Projection key, Tensor iSuper) {
        Tensor w = Ops.atLeastFloat32(key.weight());
        return Scope.keep(w.matmul(iSuper.to(w)).detach());
    }

    /** o*_V initialised to W_V i_super: a leaf tensor (at least fp32) with requires_grad, for the optimiser. */
    public static Tensor trainableValueTarget(Projection value, Tensor iSuper) {
        Tensor w = Ops.atLeastFloat32(value.weight());
        return Scope.keep(Ops.trainableCopy(w.matmul(iSuper.to(w))));
    }

    @Override
    public Tensor forward(Tensor encodings) {
        Tensor input = role == Role.KEY ? gate.keyInput(encodings) : encodings;
        return gate.output(this, input, versions(), this::edit);
    }

    /** h_n = W e_n⊥ + Σ_j g_{n,j} o*_j */
    private Tensor edit(GatedEncoding prompt) {
        Tensor eOrth = prompt.eOrth();
        Tensor targetOutput = Ops.stack(targetOutputs.stream().map(t -> t.to(eOrth)).toList(), 0);  // o*_j as rows [N, out]
        return Ops.linear(eOrth, original.weight(), null).add(prompt.gate().to(eOrth).matmul(targetOutput));
    }

    /** What a memoised output depends on besides the prompt: W's identity and version, each o*'s version. */
    private long[] versions() {
        Tensor w = original.weight();
        long[] v = new long[2 + targetOutputs.size()];
        v[0] = w.unsafeGetTensorImpl().address();
        v[1] = w._version();
        for (int j = 0; j < targetOutputs.size(); j++) v[2 + j] = targetOutputs.get(j)._version();
        return v;
    }

    @Override
    public Tensor weight() { return original.weight(); }

    public Projection original() { return original; }

    public ConceptGate gate() { return gate; }

    public Role role() { return role; }

    /** o*_j, in the gate's concept order (the same tensors that were given). */
    public List<Tensor> targetOutputs() { return targetOutputs; }
}
