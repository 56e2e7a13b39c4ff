package dev.perfusion.perfusion;

import dev.perfusion.tensor.NonFiniteException;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.GradMode;
import org.bytedeco.pytorch.T_TensorTensor_T;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.function.Function;

/**
 * The layer-independent half of Perfusion's gated rank-one edit (paper eq. 3, Appendix B). For a prompt's text
 * encodings E = [e_1 ... e_T] and concepts j = 1..N, each with a target input i*_j and gate (beta_j, tau_j), and
 * the shared inverse input covariance C^-1:
 * <pre>
 *   energy_j = i*_j^T C^-1 i*_j
 *   s_{n,j}  = e_n^T C^-1 i*_j / energy_j
 *   g_{n,j}  = sigmoid((s_{n,j} - beta_j) / tau_j)
 *   e_n⊥     = e_n - s_{n,1} i*_1                                (one concept)
 *            = e_n - Σ_j (u_j^T C^-1 e_n) u_j                    (several, EXACT: u_j C^-1-orthonormal basis)
 *            = e_n - Σ_j s_{n,j} i*_j                            (several, APPROXIMATE)
 * </pre>
 * Every edited projection then computes h_n = W e_n⊥ + Σ_j g_{n,j} o*_j ({@link GatedRankOneProjection}).
 *
 * <p>None of this depends on the layer, so it is computed once per encodings tensor and shared by all edited
 * projections: the result is cached under the identity of the E tensor (its native TensorImpl and version
 * counter), and with autograd off each projection's output is memoised beside it, so the K/V of a prompt are
 * computed once for all denoising steps. {@link #prepare} is the explicit form the pipeline may call once per
 * prompt (it also returns s and g for logging). Autograd flows from the results into E; i* and C^-1 are constants.
 */
public final class ConceptGate {
    /** How e⊥ removes several concepts at once. With one concept both are the same. */
    public enum Orthogonalization {
        /** Appendix B: remove the C^-1-orthogonal projection onto span{i*_j}. */
        EXACT,
        /** The author's preferred first try: remove Σ_j s_{n,j} i*_j (exact when the i*_j are C^-1-orthogonal). */
        APPROXIMATE
    }

    /** The function of s that scales o*. */
    public enum Gating {
        /** Perfusion: g = sigmoid((s - beta) / tau). */
        SIGMOID,
        /** g = s: the plain ROME edit W' = W + Λ (C^-1 i*)^T, an ablation (and a check of the algebra). */
        LINEAR_ROME
    }

    private static final int CACHED_PROMPTS = 8;

    private final long dim;
    private final Orthogonalization orthogonalization;
    private final Tensor cInv;      // C^-1 [D, D], float64 CPU
    private final Tensor cholesky;  // L with C^-1 = L L^T, float64 CPU; EXACT only
    private final List<Concept> concepts = new ArrayList<>();
    private Gating gating = Gating.SIGMOID;
    private Constants constants;
    private final PromptCache cache = new PromptCache(CACHED_PROMPTS);
    private long computations;
    private boolean closed;

    /**
     * Per-concept constants (float64 CPU), rebuilt whenever a concept changes.
     *
     * @param sProjector C^-1 i*_j / energy_j as columns [D, N], so that s = E sProjector
     * @param iStar      i*_j as rows [N, D]
     * @param cInvU      C^-1 u_j as columns [D, N] (EXACT)
     * @param uRows      u_j as rows [N, D] (EXACT)
     * @param beta       beta_j [N]
     * @param tau        tau_j [N]
     */
    record Constants(Tensor sProjector, Tensor iStar, Tensor cInvU, Tensor uRows, Tensor beta, Tensor tau) {
        void release() {
            for (Tensor t : new Tensor[] {sProjector, iStar, cInvU, uRows, beta, tau}) {
                if (t != null) t.releaseReference();
            }
        }
    }

    /**
     * @param cInv   C^-1 [D, D], the inverse uncentred second moment of the text encodings ({@link InputCovariance});
     *               the same for every concept combined
     * @param concepts one or more concepts, in the order the projections' target outputs o*_j are given
     */
    public ConceptGate(Tensor cInv, List<Concept> concepts, Orthogonalization orthogonalization) {
        if (concepts.isEmpty()) throw new IllegalArgumentException("a concept gate needs at least one concept");
        long[] shape = Ops.shape(cInv);
        if (shape.length != 2 || shape[0] != shape[1]) {
            throw new IllegalArgumentException("C^-1 must be square [D, D], got " + Ops.shapeString(cInv));
        }
        this.dim = shape[0];
        this.orthogonalization = orthogonalization;
        try (Scope s = Scope.inference()) {
            Tensor c = cInv.detach().to(Ops.cpu(), torch.ScalarType.Double);
            this.cInv = Scope.keep(Ops.mul(c.add(c.t()), 0.5));
            this.cholesky = orthogonalization == Orthogonalization.EXACT ? Scope.keep(cholesky(this.cInv)) : null;
        }
        List<Concept> own = new ArrayList<>();
        for (Concept concept : concepts) own.add(ownCopy(concept));
        rebuild(own);
    }

    /** One concept (EXACT and APPROXIMATE coincide). */
    public static ConceptGate single(Tensor cInv, Concept concept) {
        return new ConceptGate(cInv, List.of(concept), Orthogonalization.APPROXIMATE);
    }

    public long dim() { return dim; }

    public int conceptCount() { return concepts.size(); }

    public Orthogonalization orthogonalization() { return orthogonalization; }

    public synchronized List<Concept> concepts() { return Collections.unmodifiableList(new ArrayList<>(concepts)); }

    public synchronized Concept concept(int j) { return concepts.get(j); }

    public synchronized Gating gating() { return gating; }

    /** Replaces concept j, e.g. after the EMA update of i* in training or to change its gate at generation. */
    public synchronized void setConcept(int j, Concept concept) {
        List<Concept> next = new ArrayList<>(concepts);
        next.set(j, ownCopy(concept));
        rebuild(next);
    }

    /**
     * Moves concept j's i* to {@code iStar}, as training does at every step: the value is copied into the gate's own
     * tensor, so a long run allocates nothing per step (a new concept per step would keep every old i*).
     */
    public synchronized void trackIStar(int j, Tensor iStar) {
        Tensor own = concepts.get(j).iStar();
        if (!java.util.Arrays.equals(Ops.shape(own), Ops.shape(iStar))) {
            throw new IllegalArgumentException("i* has " + Ops.shapeString(iStar) + " dims but the gate's is " + Ops.shapeString(own));
        }
        Constants built;
        try (Scope s = Scope.inference()) {
            List<Concept> next = new ArrayList<>(concepts);
            next.set(j, concepts.get(j).withIStar(iStar.detach().to(Ops.cpu(), torch.ScalarType.Double)));
            built = build(next); // kept past this scope; a refused i* leaves the gate as it was
            own.copy_(iStar.detach());
        }
        replaceConstants(built);
    }

    /**
     * Gives the prompt batch E its own i* for concept j, one per equal block of E's rows: each block's forward passes
     * read its own, while the gate's own i* stays as it is. Training binds each micro-batch of a step to the i* it
     * saw (micro-batches fused into one batch are E's blocks), so that micro-batches fused or run side by side
     * compute what they would one after another. The binding lasts as long as E's cache entry (until
     * {@link #trackIStar}, {@link #clearCache} or eviction; see {@link #holdGraphs}).
     */
    public synchronized void trackIStarFor(Tensor encodings, int j, List<Tensor> iStarPerBlock) {
        checkEncodings(encodings);
        long rows = Ops.shape(encodings)[0];
        if (iStarPerBlock.isEmpty() || rows % iStarPerBlock.size() != 0) {
            throw new IllegalArgumentException(iStarPerBlock.size() + " i* for a prompt batch of " + rows + " rows: it must split into equal blocks");
        }
        List<Constants> blocks = new ArrayList<>();
        for (Tensor iStar : iStarPerBlock) {
            List<Concept> bound = new ArrayList<>(concepts);
            bound.set(j, ownCopy(concepts.get(j).withIStar(iStar.detach())));
            blocks.add(build(bound));
        }
        cache.entry(encodings).bind(blocks);
    }

    /** Sets (beta, tau) of every concept: the user's fidelity / text-alignment knob. */
    public synchronized void setGate(double beta, double tau) {
        List<Concept> next = new ArrayList<>(concepts);
        for (int j = 0; j < next.size(); j++) next.set(j, next.get(j).withGate(beta, tau));
        rebuild(next);
    }

    public synchronized void setGating(Gating gating) {
        this.gating = gating;
        cache.clear();
    }

    // ---- the per-prompt math --------------------------------------------------------------------------------

    /**
     * s, g and e⊥ for the encodings E [B, T, D], computed now (no caching). Computed in float64 when E is
     * float64, otherwise in float32; e⊥ is returned in E's dtype.
     */
    public synchronized GatedEncoding compute(Tensor encodings) {
        requireOpen();
        return compute(encodings, List.of(constants));
    }

    /** The gate state of E whose equal row blocks each read their own constants ({@link #trackIStarFor}). */
    private GatedEncoding compute(Tensor encodings, List<Constants> perBlock) {
        checkEncodings(encodings);
        computations++;
        if (perBlock.size() == 1) return computeBlock(encodings, perBlock.get(0));
        Tensor[] blocks = Ops.chunk(encodings, perBlock.size(), 0);
        List<Tensor> s = new ArrayList<>(), gate = new ArrayList<>(), eOrth = new ArrayList<>();
        for (int b = 0; b < blocks.length; b++) {
            GatedEncoding g = computeBlock(blocks[b], perBlock.get(b));
            s.add(g.s());
            gate.add(g.gate());
            eOrth.add(g.eOrth());
        }
        return new GatedEncoding(encodings, Ops.cat(s, 0), Ops.cat(gate, 0), Ops.cat(eOrth, 0));
    }

    private GatedEncoding computeBlock(Tensor encodings, Constants c) {
        Tensor e = encodings.to(encodings.scalar_type().intern() == torch.ScalarType.Double
                ? torch.ScalarType.Double : torch.ScalarType.Float);

        // s_{n,j} = e_n^T C^-1 i*_j / (i*_j^T C^-1 i*_j)
        Tensor s = e.matmul(c.sProjector().to(e));

        // g_{n,j} = sigmoid((s_{n,j} - beta_j) / tau_j)
        Tensor gate = gating == Gating.LINEAR_ROME ? s : Ops.sigmoid(s.sub(c.beta().to(e)).div(c.tau().to(e)));

        Tensor eOrth = switch (orthogonalization) {
            // e_n⊥ = e_n - Σ_j s_{n,j} i*_j   (so W e_n⊥ = W e_n - Σ_j s_{n,j} (W i*_j))
            case APPROXIMATE -> e.sub(s.matmul(c.iStar().to(e)));
            // e_n⊥ = e_n - Σ_j (u_j^T C^-1 e_n) u_j
            case EXACT -> e.sub(e.matmul(c.cInvU().to(e)).matmul(c.uRows().to(e)));
        };
        return new GatedEncoding(encodings, s, gate, eOrth.to(encodings.scalar_type().intern()));
    }

    /**
     * The shared per-prompt state for E: computed on first use, then reused by every projection and denoising
     * step for as long as E stays cached. The returned tensors are the caller's (freed with its scope).
     */
    public synchronized GatedEncoding prepare(Tensor encodings) {
        return gated(encodings).shared();
    }

    /**
     * Global key locking: for the prompt batch {@code encodings}, the KEY projections read {@code keyEncodings}
     * (the same prompts with the supercategory word in place of the concept word; the unconditional rows are
     * the unconditional encodings) and compute the gate on them; VALUE projections keep reading E. The lock holds
     * until {@link #forget} or {@link #clearCache}.
     */
    public synchronized void lockKeys(Tensor encodings, Tensor keyEncodings) {
        requireOpen();
        checkEncodings(encodings);
        checkEncodings(keyEncodings);
        if (!encodings.is_same_size(keyEncodings)) {
            throw new IllegalArgumentException("key-locking encodings " + Ops.shapeString(keyEncodings)
                    + " must have the shape of the prompt encodings " + Ops.shapeString(encodings));
        }
        cache.lock(encodings, keyEncodings);
    }

    /** The picture that read {@code encodings} is drawn: their cached state and any key lock on them go. */
    public synchronized void forget(Tensor encodings) { cache.remove(encodings); }

    /**
     * Lets {@code parts} prompt batches that require grad stay cached at once (default one): the parts of a training
     * step whose forward passes run side by side, each sharing its gate state across the layers.
     */
    public synchronized void holdGraphs(int parts) { cache.holdGraphs(parts); }

    /**
     * Frees C^-1, its factor, the constants, the concepts' own i* and every cached prompt at once (megabytes for SD's width, per generation
     * job; left to the garbage collector, which the small Java objects holding them seldom wake): called when the
     * concepts leave the model. The gate refuses any later use.
     */
    public synchronized void close() {
        if (closed) return;
        closed = true;
        cache.clear();
        constants.release();
        cInv.releaseReference();
        if (cholesky != null) cholesky.releaseReference();
        Scope.releaseEach(concepts.stream().map(Concept::iStar).toList()); // setGate's concepts share their i*
    }

    private void requireOpen() {
        if (closed) throw new IllegalStateException("the concept gate is closed: its concepts were taken out of the model");
    }

    /** Forgets every cached prompt (call after a training step's backward to free its graph early). */
    public synchronized void clearCache() { cache.clear(); }

    /** u_j as rows [N, D] (EXACT only): the C^-1-orthonormal basis of span{i*_j}, float64. */
    synchronized Tensor orthonormalBasis() {
        if (constants.uRows() == null) throw new IllegalStateException("only EXACT orthogonalization builds a basis");
        return constants.uRows().clone();
    }

    /** How many prompt batches are cached now. */
    synchronized int cachedPrompts() { return cache.size(); }

    /** How many times s, g and e⊥ were computed (to check the sharing). */
    public synchronized long computations() { return computations; }

    // ---- used by GatedRankOneProjection -----------------------------------------------------------------------

    /** What a KEY projection reads for the prompt batch E: E itself unless keys are globally locked. */
    synchronized Tensor keyInput(Tensor encodings) {
        PromptCache.Entry entry = cache.find(encodings);
        return entry == null || entry.keyEncodings() == null ? encodings : new Tensor(entry.keyEncodings());
    }

    /**
     * A projection's output for {@code input}: {@code edit} applied to the shared gate state; with autograd off
     * the output is memoised per projection until its {@code versions} (weight and targets) change.
     */
    synchronized Tensor output(Object projection, Tensor input, long[] versions, Function<GatedEncoding, Tensor> edit) {
        PromptCache.Entry entry = entryWithGate(input);
        if (GradMode.is_enabled()) return edit.apply(entry.gated());
        Tensor memo = entry.memo(projection, versions);
        if (memo == null) {
            Tensor out = edit.apply(entry.gated());
            entry.memoise(projection, versions, out);
            return out;
        }
        return new Tensor(memo);
    }

    private GatedEncoding gated(Tensor encodings) {
        return entryWithGate(encodings).gated();
    }

    private PromptCache.Entry entryWithGate(Tensor encodings) {
        requireOpen();
        PromptCache.Entry entry = cache.entry(encodings);
        boolean needsGraph = GradMode.is_enabled() && encodings.requires_grad();
        // a state computed with autograd off would silently cut the gradient to E: recompute it with a graph
        if (entry.gated() == null || (needsGraph && !entry.gatedWithGraph())) {
            entry.setGated(compute(encodings, entry.boundConstants().isEmpty() ? List.of(constants) : entry.boundConstants()), needsGraph);
        }
        return entry;
    }

    // ---- per-concept constants --------------------------------------------------------------------------------

    /** Makes {@code next} the gate's concepts; their constants are built first, so a refused concept leaves the gate as it was. */
    private void rebuild(List<Concept> next) {
        Constants built = build(next);
        concepts.clear();
        concepts.addAll(next);
        replaceConstants(built);
    }

    private void replaceConstants(Constants built) {
        cache.clear();
        if (constants != null) constants.release();
        constants = built;
    }

    private Constants build(List<Concept> concepts) {
        requireOpen();
        try (Scope s = Scope.inference()) {
            int n = concepts.size();
            List<Tensor> rows = new ArrayList<>();
            for (Concept c : concepts) rows.add(c.iStar());
            Tensor iStar = Ops.stack(rows, 0);                                   // [N, D]
            Tensor cInvIStar = iStar.matmul(cInv);                               // rows (C^-1 i*_j)^T, C^-1 symmetric
            Tensor energy = Ops.sum(cInvIStar.mul(iStar), 1, false);             // i*_j^T C^-1 i*_j
            double[] energies = Ops.toDoubles(energy);
            for (int j = 0; j < n; j++) {
                if (Double.isNaN(energies[j]) || Double.isInfinite(energies[j])) {
                    throw new NonFiniteException("concept " + j + ": i* holds NaN or infinite values");
                }
                if (!(energies[j] > 0)) throw new IllegalArgumentException("concept " + j + ": i* is zero");
            }
            Tensor sProjector = cInvIStar.div(energy.unsqueeze(1)).t().contiguous();
            Tensor cInvU = null, uRows = null;
            if (orthogonalization == Orthogonalization.EXACT) {
                Tensor[] basis = cInvOrthonormalBasis(iStar);
                uRows = basis[0];
                cInvU = basis[1];
            }
            double[] beta = new double[n], tau = new double[n];
            for (int j = 0; j < n; j++) {
                beta[j] = concepts.get(j).beta();
                tau[j] = concepts.get(j).tau();
            }
            return new Constants(Scope.keep(sProjector), Scope.keep(iStar),
                    cInvU == null ? null : Scope.keep(cInvU), uRows == null ? null : Scope.keep(uRows),
                    Scope.keep(Ops.fromDoubles(beta, n)), Scope.keep(Ops.fromDoubles(tau, n)));
        }
    }

    /**
     * Appendix B: C^-1 = L L^T, Ĩ = [L^T i*_1 ... L^T i*_N], Q = orthonormal columns of QR(Ĩ), u_j = L^-T q_j,
     * so that u_j^T C^-1 u_k = δ_jk and span{u_j} = span{i*_j}. Returns {u_j as rows [N, D], C^-1 u_j = L q_j as
     * columns [D, N]}.
     */
    private Tensor[] cInvOrthonormalBasis(Tensor iStar) {
        Tensor lT = cholesky.t();
        Tensor iTilde = lT.matmul(iStar.t());                                   // [D, N]
        T_TensorTensor_T qr = torch.linalg_qr(iTilde, "reduced");
        Tensor q = new Tensor(qr.get0()), r = new Tensor(qr.get1());  // owned copies: get0/get1 point into the tuple
        double[] diagonal = Ops.toDoubles(r.diagonal());
        double largest = 0;
        for (double d : diagonal) largest = Math.max(largest, Math.abs(d));
        for (int j = 0; j < diagonal.length; j++) {
            if (Math.abs(diagonal[j]) <= 1e-10 * largest) {
                throw new IllegalArgumentException("concept " + j + ": its i* is (nearly) a combination of the "
                        + "others' in the C^-1 metric; exact orthogonalization needs independent concepts");
            }
        }
        Tensor u = torch.linalg_solve_triangular(lT, q, true);                  // L^T U = Q
        return new Tensor[] {u.t().contiguous(), cholesky.matmul(q)};
    }

    private static Tensor cholesky(Tensor cInv) {
        T_TensorTensor_T result = torch.linalg_cholesky_ex(cInv);
        if (Ops.item(result.get1()) != 0) {
            throw new IllegalArgumentException("C^-1 is not positive definite (Cholesky failed at column "
                    + (long) Ops.item(result.get1()) + "); recompute the input covariance from more captions");
        }
        return new Tensor(result.get0());  // an owned copy: get0 points into the tuple
    }

    private Concept ownCopy(Concept concept) {
        long[] shape = Ops.shape(concept.iStar());
        if (shape[0] != dim) {
            throw new IllegalArgumentException("i* has " + shape[0] + " dims but C^-1 is " + dim + "x" + dim);
        }
        try (Scope s = Scope.inference()) {
            Tensor copy = concept.iStar().detach().to(Ops.cpu(), torch.ScalarType.Double).clone();
            return concept.withIStar(Scope.keep(copy));
        }
    }

    private void checkEncodings(Tensor encodings) {
        long[] shape = Ops.shape(encodings);
        if (shape.length != 3 || shape[2] != dim) {
            throw new IllegalArgumentException("text encodings must be [B, T, " + dim + "], got " + Ops.shapeString(encodings));
        }
    }
}
