package dev.perfusion.perfusion;

import dev.perfusion.io.Npy;
import dev.perfusion.io.Safetensors;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** C or C^-1 computed elsewhere: read from .npy or .safetensors, checked, inverted, and named for the concept file. */
class CovarianceFileTest {
    private static final int D = 12;

    @TempDir Path tmp;

    /** A well-conditioned symmetric positive definite matrix: A A^T / D + I. */
    private static float[] spd(long seed) {
        Random r = new Random(seed);
        double[][] a = new double[D][D];
        for (double[] row : a) for (int j = 0; j < D; j++) row[j] = r.nextGaussian();
        float[] c = new float[D * D];
        for (int i = 0; i < D; i++) {
            for (int j = 0; j < D; j++) {
                double v = i == j ? 1 : 0;
                for (int k = 0; k < D; k++) v += a[i][k] * a[j][k] / D;
                c[i * D + j] = (float) v;
            }
        }
        // exactly symmetric in float32
        for (int i = 0; i < D; i++) for (int j = 0; j < i; j++) c[i * D + j] = c[j * D + i];
        return c;
    }

    private static double identityError(Tensor c, Tensor cInv) {
        Tensor product = c.to(torch.ScalarType.Double).matmul(cInv.to(torch.ScalarType.Double));
        return Ops.maxAbsDiff(product, torch.eye(D, new TensorOptions(torch.ScalarType.Double)));
    }

    @Test
    void aCovarianceInNpyIsInvertedAndAnInverseTakenAsItIs() throws IOException {
        float[] c = spd(1);
        Path npy = tmp.resolve("c.npy");
        Npy.writeFloats(npy, c, D, D);
        try (Scope s = Scope.inference()) {
            CovarianceFile.Loaded fromC = CovarianceFile.read(npy, CovarianceFile.Holds.COVARIANCE, D, "enc", 0);
            assertArrayEquals(new long[] {D, D}, Ops.shape(fromC.cInv()));
            assertTrue(identityError(Ops.fromFloats(c, D, D), fromC.cInv()) < 1e-5);
            assertTrue(fromC.provenance().matches("file c\\.npy \\(sha256 [0-9a-f]{16}\\), C \\[12, 12\\]"), fromC.provenance());

            CovarianceFile.Loaded asInverse = CovarianceFile.read(npy, CovarianceFile.Holds.INVERSE, D, "enc", 0);
            assertArrayEquals(c, Ops.toFloats(asInverse.cInv()));
            assertTrue(asInverse.provenance().contains("C^-1 [12, 12]"), asInverse.provenance());
        }
    }

    @Test
    void aSafetensorsFileSaysWhatItHoldsAndForWhichEncoder() throws IOException {
        try (Scope s = Scope.inference()) {
            InputCovariance computed = new InputCovariance(D);
            Random r = new Random(3);
            float[] e = new float[4 * 77 * D];
            for (int i = 0; i < e.length; i++) e[i] = (float) r.nextGaussian();
            computed.accumulate(Ops.fromFloats(e, 4, 77, D));
            Path file = tmp.resolve("mine.safetensors");
            computed.save(file, "enc-a", Map.of("corpus", "file captions.txt", "clip_skip", "1"));
            // declared COVARIANCE, but the tensor names say the inverse is there: the names win
            CovarianceFile.Loaded loaded = CovarianceFile.read(file, CovarianceFile.Holds.COVARIANCE, D, "enc-a", 1);
            assertArrayEquals(Ops.toFloats(computed.inverse()), Ops.toFloats(loaded.cInv()));
            assertTrue(loaded.provenance().endsWith("C^-1 [12, 12], 4 captions of file captions.txt"), loaded.provenance());

            IllegalArgumentException encoder = assertThrows(IllegalArgumentException.class,
                    () -> CovarianceFile.read(file, CovarianceFile.Holds.COVARIANCE, D, "enc-b", 1));
            assertTrue(encoder.getMessage().startsWith(file + ": computed for text encoder enc-a, not this model's (enc-b)"), encoder.getMessage());
            IllegalArgumentException skip = assertThrows(IllegalArgumentException.class,
                    () -> CovarianceFile.read(file, CovarianceFile.Holds.COVARIANCE, D, "enc-a", 0));
            assertTrue(skip.getMessage().contains("computed at clip skip 1, but this model encodes at 0"), skip.getMessage());
            IllegalArgumentException dim = assertThrows(IllegalArgumentException.class,
                    () -> CovarianceFile.read(file, CovarianceFile.Holds.COVARIANCE, 16, "enc-a", 1));
            assertTrue(dim.getMessage().contains("C^-1 is [12, 12], but this text encoder's encodings have 16 dims"), dim.getMessage());

            Map<String, Tensor> two = new LinkedHashMap<>();
            two.put("a", Ops.fromFloats(spd(1), D, D));
            two.put("b", Ops.fromFloats(spd(2), D, D));
            Path ambiguous = tmp.resolve("two.safetensors");
            Safetensors.write(ambiguous, two, Map.of(), Safetensors.StoredType.F32);
            IOException which = assertThrows(IOException.class, () -> CovarianceFile.read(ambiguous, CovarianceFile.Holds.COVARIANCE, D, "x", 0));
            assertTrue(which.getMessage().contains("holds 2 tensors and none is named 'covariance_inverse' or 'covariance'"), which.getMessage());
        }
    }

    @Test
    void matricesThatCannotBeACovarianceAreRefused() throws IOException {
        float[] c = spd(4);
        float[] asymmetric = c.clone();
        asymmetric[1] += 0.5f;
        assertRefused(asymmetric, "is not symmetric: max |A - A^T| is 0.5");
        float[] indefinite = c.clone();
        for (int i = 0; i < D; i++) indefinite[i * D + i] -= 50;
        assertRefused(indefinite, "is not positive definite (eigenvalues -");
        float[] nan = c.clone();
        nan[5] = Float.NaN;
        assertRefused(nan, "holds NaN or infinite values");
        assertRefused(new float[D * D], "is all zeros");
        Path vector = tmp.resolve("v.npy");
        Npy.writeFloats(vector, new float[D], D);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CovarianceFile.read(vector, CovarianceFile.Holds.COVARIANCE, D, "x", 0));
        assertTrue(e.getMessage().contains("must be a square matrix, got shape [12]"), e.getMessage());
    }

    private void assertRefused(float[] matrix, String expected) throws IOException {
        Path f = tmp.resolve("bad.npy");
        Npy.writeFloats(f, matrix, D, D);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CovarianceFile.read(f, CovarianceFile.Holds.COVARIANCE, D, "x", 0));
        assertTrue(e.getMessage().startsWith(f + ": C ") && e.getMessage().contains(expected), e.getMessage());
    }
}
