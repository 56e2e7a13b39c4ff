package dev.perfusion.tensor;

import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The helpers model code reads like math: each against values worked out by hand. */
class OpsValuesTest {
    @RegisterExtension final ScopePerTest scope = ScopePerTest.inference();

    @Test
    void javaArraysGoInAndComeOutInCOrder() {
        Tensor m = Ops.fromFloats(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        assertArrayEquals(new long[] {2, 3}, Ops.shape(m));
        assertEquals("[2, 3]", Ops.shapeString(m));
        assertArrayEquals(new float[] {1, 4, 2, 5, 3, 6}, Ops.toFloats(Ops.transpose(m, 0, 1)), "a transposed view is read in its own order");
        assertArrayEquals(new double[] {0.1, 1e300}, Ops.toDoubles(Ops.fromDoubles(new double[] {0.1, 1e300}, 2)));
        assertArrayEquals(new long[] {Long.MAX_VALUE, -1}, Ops.toLongs(Ops.fromLongs(new long[] {Long.MAX_VALUE, -1}, 2)));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Ops.fromFloats(new float[5], 2, 3));
        assertEquals("5 values do not fill shape [2, 3]", e.getMessage());
        assertEquals(24, Ops.numel(new long[] {2, 3, 4}));
        assertEquals(1, Ops.numel(new long[] {}), "a scalar");
    }

    @Test
    void arithmeticAndReductions() {
        Tensor a = Ops.fromFloats(new float[] {1, 2, 3, 4}, 2, 2), b = Ops.fromFloats(new float[] {4, 3, 2, 1}, 2, 2);
        assertArrayEquals(new float[] {-7, -4, -1, 2}, Ops.toFloats(Ops.addScaled(a, b, -2)), "a - 2b");
        assertArrayEquals(new float[] {8, 5, 20, 13}, Ops.toFloats(Ops.matmul(a, b)));
        assertArrayEquals(new float[] {1, 2, 2, 2}, Ops.toFloats(Ops.clamp(a, 1, 2)));
        assertArrayEquals(new float[] {4, 6}, Ops.toFloats(Ops.sum(a, 0, false)));
        assertArrayEquals(new long[] {2, 1}, Ops.shape(Ops.mean(a, 1, true)));
        assertArrayEquals(new float[] {1.5f, 3.5f}, Ops.toFloats(Ops.mean(a, 1, true)));
        assertEquals(2.5, Ops.item(Ops.mean(a)), 1e-7);
        assertEquals(5.0, Ops.item(Ops.mseLoss(a, b)), 1e-6, "(9 + 1 + 1 + 9) / 4");
        assertEquals(3, Ops.maxAbsDiff(a, b), 1e-9);
        assertEquals(4, Ops.maxAbs(Ops.neg(a)), 1e-9);
    }

    @Test
    void activations() {
        Tensor x = Ops.fromFloats(new float[] {-1, 0, 2}, 3);
        float[] silu = Ops.toFloats(Ops.silu(x)), quick = Ops.toFloats(Ops.quickGelu(x));
        for (int i = 0; i < 3; i++) {
            double v = new double[] {-1, 0, 2}[i];
            assertEquals(v / (1 + Math.exp(-v)), silu[i], 1e-6, "x sigmoid(x)");
            assertEquals(v / (1 + Math.exp(-1.702 * v)), quick[i], 1e-6, "x sigmoid(1.702 x)");
        }
        float[] soft = Ops.toFloats(Ops.softmax(Ops.fromFloats(new float[] {0, (float) Math.log(3), 0, 0}, 2, 2), 1));
        assertArrayEquals(new float[] {0.25f, 0.75f, 0.5f, 0.5f}, soft, 1e-6f);
        // GELU(1) = 1 * Phi(1) = 0.841345; the tanh approximation 0.841192
        assertEquals(0.841345, Ops.toFloats(Ops.gelu(Ops.fromFloats(new float[] {1}, 1)))[0], 1e-5);
        assertEquals(0.841192, Ops.toFloats(Ops.geluTanh(Ops.fromFloats(new float[] {1}, 1)))[0], 1e-5);
    }

    @Test
    void attentionIsSoftmaxOfScaledScoresTimesValues() {
        // one query, two keys: scores (q.k1, q.k2) * 0.5 = (0, ln 3) with the mask adding -inf to nothing
        Tensor q = Ops.fromFloats(new float[] {2 * (float) Math.log(3), 0}, 1, 1, 2);
        Tensor k = Ops.fromFloats(new float[] {0, 1, 1, 0}, 1, 2, 2);
        Tensor v = Ops.fromFloats(new float[] {10, 0, 0, 10}, 1, 2, 2);
        assertArrayEquals(new float[] {2.5f, 7.5f}, Ops.toFloats(Ops.attention(q, k, v, null, 0.5)), 1e-5f);
        Tensor mask = Ops.fromFloats(new float[] {0, Float.NEGATIVE_INFINITY}, 1, 1, 2);
        assertArrayEquals(new float[] {10, 0}, Ops.toFloats(Ops.attention(q, k, v, mask, 0.5)), 1e-5f, "the masked key gets no weight");
    }

    @Test
    void resamplingAndPadding() {
        Tensor x = Ops.fromFloats(new float[] {1, 2, 3, 4}, 1, 1, 2, 2);
        assertArrayEquals(new float[] {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}, Ops.toFloats(Ops.upsampleNearest2x(x)));
        Tensor padded = Ops.pad2d(x, 1, 0, 0, 1);
        assertArrayEquals(new long[] {1, 1, 3, 3}, Ops.shape(padded));
        assertArrayEquals(new float[] {0, 1, 2, 0, 3, 4, 0, 0, 0}, Ops.toFloats(padded), "left 1, bottom 1");
        assertArrayEquals(new float[] {2.5f}, Ops.toFloats(Ops.avgPool2d(x, 2)));
        assertArrayEquals(new float[] {2, 1, 4, 3}, Ops.toFloats(Ops.flipWidth(x)));
    }

    @Test
    void joiningAndSplitting() {
        Tensor a = Ops.fromFloats(new float[] {1, 2}, 1, 2), b = Ops.fromFloats(new float[] {3, 4}, 1, 2);
        assertArrayEquals(new float[] {1, 2, 3, 4}, Ops.toFloats(Ops.cat(0, a, b)));
        assertArrayEquals(new long[] {1, 4}, Ops.shape(Ops.cat(List.of(a, b), 1)));
        assertArrayEquals(new long[] {2, 1, 2}, Ops.shape(Ops.stack(List.of(a, b), 0)));
        Tensor[] parts = Ops.chunk(Ops.fromFloats(new float[] {1, 2, 3, 4, 5, 6}, 3, 2), 3, 0);
        assertEquals(3, parts.length);
        assertArrayEquals(new float[] {5, 6}, Ops.toFloats(parts[2]));
        assertArrayEquals(new float[] {3, 4}, Ops.toFloats(Ops.narrow(Ops.fromFloats(new float[] {1, 2, 3, 4, 5}, 5), 0, 2, 2)));
        assertArrayEquals(new long[] {3, 2}, Ops.shape(Ops.permute(Ops.reshape(Ops.ones(6), 2, 3), 1, 0)));
    }
}
