package dev.perfusion.perfusion;

import dev.perfusion.io.Npy;
import dev.perfusion.io.Safetensors;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.T_TensorTensor_T;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Locale;
import java.util.Map;

/**
 * An input covariance computed elsewhere (for example over a large caption set for the real SD text encoder): C or
 * C^-1 as a [D, D] matrix in a .npy or .safetensors file. A safetensors file says what it holds by its tensor names
 * ({@value InputCovariance#COVARIANCE_KEY}, {@value InputCovariance#INVERSE_KEY}, as {@link InputCovariance#save}
 * writes them, C^-1 preferred); a .npy file or a lone tensor of another name holds what the caller declares. The
 * matrix must be D x D for this text encoder, finite, symmetric and positive definite; a file that records the text
 * encoder or the layer it was computed for must match this model's. C is inverted in float64.
 */
public final class CovarianceFile {
    /** Relative asymmetry (max |A - A^T| / max |A|) tolerated from float32 rounding elsewhere. */
    static final double SYMMETRY_TOLERANCE = 1e-4;
    /** Eigenvalues below this fraction of the largest make the matrix singular for our purposes. */
    private static final double SINGULAR = 1e-12;

    private CovarianceFile() {}

    /** Which matrix a file holds. */
    public enum Holds {
        COVARIANCE("C"), INVERSE("C^-1");

        public final String symbol;

        Holds(String symbol) { this.symbol = symbol; }
    }

    /** C^-1 (float32 [D, D] on the CPU), and where it came from, for the concept file. */
    public record Loaded(Tensor cInv, String provenance) {}

    /**
     * Reads and checks the matrix of {@code file}.
     *
     * @param declared        what a .npy file or a safetensors file's one unnamed tensor holds
     * @param dim             the text encoder's width D
     * @param textEncoderHash this model's text encoder, which a file that names one must have been computed for
     * @param clipSkip        the text encoder layer in use, which a file that records one must have been computed at
     */
    public static Loaded read(Path file, Holds declared, long dim, String textEncoderHash, int clipSkip) throws IOException {
        if (!Files.isRegularFile(file)) throw new IOException(file + ": no such file (expected a .npy or .safetensors matrix)");
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        Tensor matrix;
        Holds holds;
        String recorded = "";
        try (Scope s = Scope.inference()) {
            if (name.endsWith(".npy")) {
                matrix = Npy.read(file).toTensor();
                holds = declared;
            } else {
                Safetensors st = Safetensors.open(file);
                Map<String, String> meta = st.metadata();
                String tensor;
                if (st.has(InputCovariance.INVERSE_KEY)) {
                    tensor = InputCovariance.INVERSE_KEY;
                    holds = Holds.INVERSE;
                } else if (st.has(InputCovariance.COVARIANCE_KEY)) {
                    tensor = InputCovariance.COVARIANCE_KEY;
                    holds = Holds.COVARIANCE;
                } else if (st.keys().size() == 1) {
                    tensor = st.keys().iterator().next();
                    holds = declared;
                } else {
                    throw new IOException(file + ": holds " + st.keys().size() + " tensors and none is named '"
                            + InputCovariance.INVERSE_KEY + "' or '" + InputCovariance.COVARIANCE_KEY + "', so which is the matrix is unclear");
                }
                String encoder = meta.get(InputCovariance.ENCODER_KEY);
                if (encoder != null && !encoder.equals(textEncoderHash)) {
                    throw new IllegalArgumentException(file + ": computed for text encoder " + encoder + ", not this model's ("
                            + textEncoderHash + "); compute it for this model");
                }
                String skip = meta.get("clip_skip");
                if (skip != null && !skip.equals(Integer.toString(clipSkip))) {
                    throw new IllegalArgumentException(file + ": computed at clip skip " + skip + ", but this model encodes at "
                            + clipSkip + "; they must match");
                }
                if (meta.containsKey(InputCovariance.CAPTIONS_KEY)) recorded += ", " + meta.get(InputCovariance.CAPTIONS_KEY) + " captions";
                if (meta.containsKey("corpus")) recorded += " of " + meta.get("corpus");
                matrix = st.read(tensor, torch.ScalarType.Double);
            }
            Tensor cInv = Scope.keep(checked(file, matrix, holds, dim));
            String provenance = String.format(Locale.ROOT, "file %s (sha256 %s), %s [%d, %d]%s", file.getFileName(),
                    sha256(file).substring(0, 16), holds.symbol, dim, dim, recorded);
            return new Loaded(cInv, provenance);
        }
    }

    /** The checks, then C^-1 as float32. */
    private static Tensor checked(Path file, Tensor matrix, Holds holds, long dim) {
        String what = file + ": " + holds.symbol;
        long[] shape = Ops.shape(matrix);
        if (shape.length != 2 || shape[0] != shape[1]) {
            throw new IllegalArgumentException(what + " must be a square matrix, got shape " + Ops.shapeString(matrix));
        }
        if (shape[0] != dim) {
            throw new IllegalArgumentException(what + " is [" + shape[0] + ", " + shape[1] + "], but this text encoder's encodings have "
                    + dim + " dims (expected [" + dim + ", " + dim + "])");
        }
        Tensor a = matrix.to(torch.ScalarType.Double);
        if (!Ops.allFinite(a)) throw new IllegalArgumentException(what + " holds NaN or infinite values");
        double scale = Ops.maxAbs(a);
        double asymmetry = Ops.maxAbs(a.sub(a.t()));
        if (!(scale > 0)) throw new IllegalArgumentException(what + " is all zeros");
        if (asymmetry > SYMMETRY_TOLERANCE * scale) {
            throw new IllegalArgumentException(String.format(Locale.ROOT, "%s is not symmetric: max |A - A^T| is %.3g, %.2g of its"
                    + " largest entry (tolerance %.0e)", what, asymmetry, asymmetry / scale, SYMMETRY_TOLERANCE));
        }
        Tensor sym = Ops.mul(a.add(a.t()), 0.5);
        double[] eigen = Ops.toDoubles(torch.linalg_eigvalsh(sym));
        double smallest = eigen[0], largest = eigen[eigen.length - 1];
        T_TensorTensor_T factor = torch.linalg_cholesky_ex(sym);
        if (!(largest > 0) || smallest <= SINGULAR * largest || Ops.item(factor.get1()) != 0) {
            throw new IllegalArgumentException(String.format(Locale.ROOT, "%s is not positive definite (eigenvalues %.3g .. %.3g)%s",
                    what, smallest, largest, holds == Holds.COVARIANCE ? "; a covariance of too few captions is singular" : ""));
        }
        Tensor inverse = holds == Holds.INVERSE ? sym : torch.cholesky_inverse(factor.get0());
        return inverse.to(torch.ScalarType.Float);
    }

    private static String sha256(Path file) throws IOException {
        try (InputStream in = new DigestInputStream(Files.newInputStream(file), MessageDigest.getInstance("SHA-256"))) {
            in.transferTo(java.io.OutputStream.nullOutputStream());
            return HexFormat.of().formatHex(((DigestInputStream) in).getMessageDigest().digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JVM has no SHA-256", e);
        }
    }
}
