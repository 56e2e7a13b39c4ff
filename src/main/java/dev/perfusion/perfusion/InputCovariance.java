package dev.perfusion.perfusion;

import dev.perfusion.io.Safetensors;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.util.Progress;
import org.bytedeco.pytorch.T_TensorTensor_T;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * The uncentred second moment of the text encodings that reach the edited layers (ROME's input covariance,
 * Perfusion App. C):
 * <pre>
 *   C = (1/N) Σ e e^T      over every position (BOS, words, EOS, padding) of every caption
 * </pre>
 * accumulated in float64 and inverted in float64 through a Cholesky factorisation; C^-1 is stored as float32.
 * Its scale does not matter (s and e⊥ are invariant under C → kC); which vectors enter it does.
 */
public final class InputCovariance {
    public static final String INVERSE_KEY = "covariance_inverse";
    public static final String COVARIANCE_KEY = "covariance";
    public static final String ENCODER_KEY = "text_encoder";
    public static final String CAPTIONS_KEY = "captions";
    public static final String TOKENS_KEY = "tokens";

    /** Eigenvalues below this fraction of the largest make C singular for our purposes. */
    private static final double SINGULAR = 1e-12;
    /**
     * C^-1 is stored and used in float32, whose rounding breaks positive definiteness beyond a condition number of
     * about 1e6: a C worse conditioned than this gets the ridge.
     */
    static final double ILL_CONDITIONED = 1e-6;
    /** The ridge added to a near-singular C that has enough data, as a fraction of its mean eigenvalue. */
    static final double RIDGE = 1e-3;

    private final long dim;
    private Tensor sum;  // Σ e e^T, float64, on the device of the first batch
    private long captions;
    private long tokens;

    public InputCovariance(long dim) {
        if (dim <= 0) throw new IllegalArgumentException("dimension must be positive");
        this.dim = dim;
    }

    public long dim() { return dim; }

    /** C over {@code captions}, each batch of 32 encoded by {@code encode} into [B, T, D]. */
    public static InputCovariance of(long dim, Function<List<String>, Tensor> encode, List<String> captions,
                                     Progress progress) {
        InputCovariance c = new InputCovariance(dim);
        int batch = 32;
        for (int i = 0; i < captions.size(); i += batch) {
            try (Scope s = Scope.inference()) {
                c.accumulate(encode.apply(captions.subList(i, Math.min(captions.size(), i + batch))));
            }
            progress.update("input covariance", Math.min(captions.size(), i + batch), captions.size(), "");
        }
        return c;
    }

    public synchronized long captions() { return captions; }

    public synchronized long tokens() { return tokens; }

    /** Adds one caption batch's encodings [B, T, D] (all T positions of each of the B captions). */
    public synchronized void accumulate(Tensor encodings) {
        long[] shape = Ops.shape(encodings);
        if (shape.length != 3 || shape[2] != dim) {
            throw new IllegalArgumentException("text encodings must be [B, T, " + dim + "], got " + Ops.shapeString(encodings));
        }
        try (Scope s = Scope.inference()) {
            Tensor e = encodings.detach().reshape(-1, dim).to(torch.ScalarType.Double);
            if (!torch.isfinite(e).all().item().toBool()) {
                throw new IllegalArgumentException("caption batch " + (captions + 1) + ".." + (captions + shape[0])
                        + ": text encodings contain NaN or infinity");
            }
            // Σ e e^T over this batch's B*T vectors
            Tensor outer = e.t().matmul(e);
            if (sum == null) sum = Scope.keep(torch.zeros(new long[] {dim, dim}, new TensorOptions(torch.ScalarType.Double)).to(outer));
            sum.add_(outer);
        }
        captions += shape[0];
        tokens += shape[0] * shape[1];
    }

    /** C = (1/N) Σ e e^T as float64 [D, D] on the CPU. */
    public synchronized Tensor covariance() {
        if (tokens == 0) throw new IllegalStateException("no captions were accumulated into the input covariance");
        return Ops.div(sum.to(Ops.cpu(), torch.ScalarType.Double), tokens);
    }

    /**
     * C's condition number, and how much of it the text encoder's final layer norm makes. Every encoding is
     * y = gamma ⊙ z + beta with Σ z = 0, so all of them have the same coordinate along 1/gamma (set by beta alone):
     * no caption varies it, and C's smallest eigenvalue lies there however much text C is made from.
     *
     * @param condition                    largest / smallest eigenvalue
     * @param beyondSmallest               largest / second smallest: the conditioning of the directions the text varies
     * @param smallestAlongLayerNormNormal |cos| between the smallest eigenvalue's eigenvector and 1/gamma
     */
    public record Conditioning(double condition, double beyondSmallest, double smallestAlongLayerNormNormal) {
        public String summary() {
            return String.format(java.util.Locale.ROOT, "condition number of C %.3g; its smallest eigenvalue lies along the final layer norm's 1/gamma "
                    + "(|cos| %.4f), where every encoding has the same coordinate; the rest %.3g", condition, smallestAlongLayerNormNormal, beyondSmallest);
        }
    }

    /** {@link Conditioning} of C, given the text encoder's final layer norm weight gamma [D]. */
    public Conditioning conditioning(Tensor layerNormWeight) {
        try (Scope s = Scope.inference()) {
            T_TensorTensor_T eigen = torch.linalg_eigh(covariance());
            double[] values = Ops.toDoubles(eigen.get0());
            Tensor normal = Ops.div(torch.ones_like(layerNormWeight), layerNormWeight).to(torch.ScalarType.Double);
            double cos = Math.abs(Ops.item(eigen.get1().select(1, 0).dot(normal)) / Ops.item(normal.norm()));
            double largest = values[values.length - 1];
            return new Conditioning(largest / values[0], largest / values[Math.min(1, values.length - 1)], cos);
        }
    }

    /** C^-1 as float32 [D, D] on the CPU, computed in float64 (fails clearly when C is singular). */
    public synchronized Tensor inverse() {
        Tensor c = covariance();
        return invert(c, captions, tokens).to(torch.ScalarType.Float);
    }

    /** C^-1 = L^-T L^-1 with C = L L^T, in float64. */
    static Tensor invert(Tensor covariance, long captions, long tokens) {
        Tensor c = covariance.to(torch.ScalarType.Double);
        c = Ops.mul(c.add(c.t()), 0.5);
        double[] eigen = Ops.toDoubles(torch.linalg_eigvalsh(c));
        double smallest = eigen[0], largest = eigen[eigen.length - 1];
        if (largest > 0 && smallest <= ILL_CONDITIONED * largest && tokens >= c.size(0)) {
            // Enough text, but a small vocabulary (the bundled world's ~80 words) or the final layer norm leaves
            // directions no encoding takes: a ridge of RIDGE x the mean eigenvalue keeps C^-1 from amplifying them
            // without bound (and positive definite in float32).
            double mean = java.util.Arrays.stream(eigen).average().orElse(largest);
            c = c.add(torch.eye(c.size(0), new org.bytedeco.pytorch.TensorOptions(torch.ScalarType.Double)).mul(new org.bytedeco.pytorch.Scalar(RIDGE * mean)));
            smallest += RIDGE * mean;
        }
        T_TensorTensor_T factor = torch.linalg_cholesky_ex(c);
        if (!(largest > 0) || smallest <= SINGULAR * largest || Ops.item(factor.get1()) != 0) {
            throw new IllegalStateException(String.format(
                    "the input covariance of %d captions (%d token vectors, %d dims) is singular or not positive "
                            + "definite (eigenvalues %.3g .. %.3g): the encodings do not span all %d dimensions. "
                            + "Accumulate more captions (varied text; about 100K are used for Stable Diffusion).",
                    captions, tokens, c.size(0), smallest, largest, c.size(0)));
        }
        return torch.cholesky_inverse(factor.get0());
    }

    /** Writes C^-1 (float32), C (float32, for inspection) and the provenance metadata atomically. */
    public void save(Path file, String textEncoderHash) throws IOException {
        save(file, textEncoderHash, Map.of());
    }

    /** The same, with more provenance ({@code provenance}: what else C was computed from) in the metadata. */
    public void save(Path file, String textEncoderHash, Map<String, String> provenance) throws IOException {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        Map<String, String> metadata = new LinkedHashMap<>(provenance);
        try (Scope s = Scope.inference()) {
            synchronized (this) {
                tensors.put(INVERSE_KEY, inverse());
                tensors.put(COVARIANCE_KEY, covariance());
                metadata.put(ENCODER_KEY, textEncoderHash);
                metadata.put(CAPTIONS_KEY, Long.toString(captions));
                metadata.put(TOKENS_KEY, Long.toString(tokens));
            }
            Safetensors.write(file, tensors, metadata, Safetensors.StoredType.F32);
        }
    }

    /** A saved C^-1 with where it came from. */
    public record Stored(Tensor cInv, String textEncoderHash, long captions, long tokens) {
        /** C^-1, after checking that it was computed for this text encoder (concepts must share it). */
        public Tensor cInvFor(String expectedTextEncoderHash) {
            if (!textEncoderHash.equals(expectedTextEncoderHash)) {
                throw new IllegalStateException("the input covariance was computed for text encoder "
                        + textEncoderHash + ", not " + expectedTextEncoderHash + "; recompute it for this model");
            }
            return cInv;
        }
    }

    /** Reads C^-1 (float32 [D, D]) and its metadata. */
    public static Stored load(Path file) throws IOException {
        Safetensors st = Safetensors.open(file);
        if (!st.has(INVERSE_KEY)) throw new IOException(file + ": no tensor '" + INVERSE_KEY + "' (not an input covariance file)");
        Map<String, String> meta = st.metadata();
        for (String key : new String[] {ENCODER_KEY, CAPTIONS_KEY, TOKENS_KEY}) {
            if (!meta.containsKey(key)) throw new IOException(file + ": metadata lacks '" + key + "'");
        }
        long[] shape = st.shape(INVERSE_KEY);
        if (shape.length != 2 || shape[0] != shape[1]) {
            throw new IOException(file + ": '" + INVERSE_KEY + "' must be square, got " + java.util.Arrays.toString(shape));
        }
        try {
            return new Stored(Scope.keep(st.get(INVERSE_KEY)), meta.get(ENCODER_KEY),
                    Long.parseLong(meta.get(CAPTIONS_KEY)), Long.parseLong(meta.get(TOKENS_KEY)));
        } catch (NumberFormatException e) {
            throw new IOException(file + ": bad caption/token count in metadata: " + e.getMessage());
        }
    }
}
