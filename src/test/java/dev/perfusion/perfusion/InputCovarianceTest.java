package dev.perfusion.perfusion;

import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** Check 7: accumulation in double, the Cholesky inverse, the file, and the singular case. */
class InputCovarianceTest {
    private static final int D = 16;
    private static final int T = 77;

    @TempDir Path tmp;

    @Test
    void accumulatesTheUncentredSecondMomentInDouble() {
        try (Scope s = Scope.inference()) {
            Random r = new Random(30);
            InputCovariance covariance = new InputCovariance(D);
            double[][] direct = new double[D][D];
            long vectors = 0;
            for (int batch = 0; batch < 3; batch++) {
                int b = 2 + batch;
                float[] e = new float[b * T * D];
                for (int i = 0; i < e.length; i++) e[i] = (float) (r.nextGaussian() * (1 + i % D) + 0.3);
                covariance.accumulate(Ops.fromFloats(e, b, T, D));
                for (int v = 0; v < b * T; v++) {
                    for (int i = 0; i < D; i++) {
                        for (int j = 0; j < D; j++) direct[i][j] += (double) e[v * D + i] * e[v * D + j];
                    }
                }
                vectors += (long) b * T;
            }
            assertEquals(2 + 3 + 4, covariance.captions());
            assertEquals(vectors, covariance.tokens());
            double[] c = Ops.toDoubles(covariance.covariance());
            double worst = 0;
            for (int i = 0; i < D; i++) {
                for (int j = 0; j < D; j++) {
                    double expected = direct[i][j] / vectors;
                    worst = Math.max(worst, Math.abs(c[i * D + j] - expected) / Math.abs(direct[i][i] / vectors));
                }
            }
            assertTrue(worst < 1e-13, "C vs direct (1/N) Σ e e^T in double: " + worst);

            Tensor product = covariance.inverse().to(torch.ScalarType.Double).matmul(covariance.covariance());
            double err = Ops.maxAbsDiff(product, torch.eye(D, new TensorOptions(torch.ScalarType.Double)));
            assertTrue(err < 1e-5, "float32 C^-1 C = I: " + err);
        }
    }

    @Test
    void savesAndLoadsTheInverseWithItsProvenance() throws IOException {
        try (Scope s = Scope.inference()) {
            InputCovariance covariance = new InputCovariance(D);
            covariance.accumulate(TestMath.randn(new Random(31), 4, T, D).to(torch.ScalarType.Float));
            Path file = tmp.resolve("c_inv.safetensors");
            covariance.save(file, "clip-sha256:abc123");
            InputCovariance.Stored stored = InputCovariance.load(file);
            assertEquals("clip-sha256:abc123", stored.textEncoderHash());
            assertEquals(4, stored.captions());
            assertEquals(4L * T, stored.tokens());
            assertEquals(torch.ScalarType.Float, stored.cInv().scalar_type().intern());
            assertEquals(0.0, Ops.maxAbsDiff(stored.cInv(), covariance.inverse()));
            assertSame(stored.cInv(), stored.cInvFor("clip-sha256:abc123"));
            var wrong = assertThrows(IllegalStateException.class, () -> stored.cInvFor("openclip-h"));
            assertTrue(wrong.getMessage().contains("clip-sha256:abc123"), wrong.getMessage());
            try (var files = Files.list(tmp)) {
                assertEquals(1, files.count(), "written atomically, no temporary file left");
            }
        }
    }

    @Test
    void tooFewCaptionsGiveAClearError() {
        try (Scope s = Scope.inference()) {
            InputCovariance covariance = new InputCovariance(D);
            covariance.accumulate(TestMath.randn(new Random(32), 1, 5, D));    // 5 vectors span 5 of 16 dims
            var e = assertThrows(IllegalStateException.class, covariance::inverse);
            assertTrue(e.getMessage().contains("1 captions") && e.getMessage().contains("5 token vectors")
                    && e.getMessage().contains("more captions"), e.getMessage());

            InputCovariance empty = new InputCovariance(D);
            assertThrows(IllegalStateException.class, empty::inverse);
            assertThrows(IllegalArgumentException.class, () -> empty.accumulate(TestMath.randn(new Random(1), 2, 3, D + 1)));
        }
    }

    /** Plenty of text from a small vocabulary: encodings in a subspace. A small ridge makes C invertible. */
    @Test
    void aSmallVocabularyGetsARidgeInsteadOfAnError() {
        try (Scope s = Scope.inference()) {
            Tensor e = TestMath.randn(new Random(5), 8, T, D);
            Tensor inSubspace = e.narrow(2, 0, D / 2);
            Tensor padded = Ops.cat(2, inSubspace, Ops.zeros(8, T, D / 2));
            InputCovariance covariance = new InputCovariance(D);
            covariance.accumulate(padded);
            Tensor inverse = covariance.inverse();
            assertTrue(Ops.item(inverse.isfinite().all().to(org.bytedeco.pytorch.global.torch.ScalarType.Double)) == 1.0);
            Tensor c = covariance.covariance();
            double mean = Ops.item(c.diagonal().mean());
            // in the empty directions C^-1 is 1 / (ridge x mean eigenvalue): large but bounded
            double emptyDirection = Ops.item(inverse.select(0, D - 1).select(0, D - 1));
            assertEquals(1 / (InputCovariance.RIDGE * mean), emptyDirection, 0.05 / (InputCovariance.RIDGE * mean));
        }
    }

    /**
     * One direction a trillion times weaker than the rest (as a final layer norm leaves): not singular in float64,
     * but its float32 C^-1 would not be positive definite. The ridge keeps it so.
     */
    @Test
    void anIllConditionedCovarianceGetsARidgeSoItsFloat32InverseStaysPositiveDefinite() {
        try (Scope s = Scope.inference()) {
            Tensor e = TestMath.randn(new Random(6), 8, T, D);
            Tensor weak = e.narrow(2, D - 1, 1).mul(new org.bytedeco.pytorch.Scalar(1e-5));
            Tensor encodings = Ops.cat(2, e.narrow(2, 0, D - 1), weak);
            InputCovariance covariance = new InputCovariance(D);
            covariance.accumulate(encodings);
            Tensor inverse = covariance.inverse();
            assertEquals(org.bytedeco.pytorch.global.torch.ScalarType.Float.value, inverse.scalar_type().value);
            long failedAt = (long) Ops.item(org.bytedeco.pytorch.global.torch.linalg_cholesky_ex(inverse.to(
                    org.bytedeco.pytorch.global.torch.ScalarType.Double)).get1());
            assertEquals(0, failedAt, "Cholesky of the stored C^-1 fails at this column");
            double mean = Ops.item(covariance.covariance().diagonal().mean());
            assertTrue(Ops.item(inverse.select(0, D - 1).select(0, D - 1)) < 1.5 / (InputCovariance.RIDGE * mean),
                    "the weak direction is bounded by the ridge");
        }
    }
}
