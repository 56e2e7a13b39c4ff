package dev.perfusion.nn;

import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.ScopePerTest;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import static org.junit.jupiter.api.Assertions.*;

/** Each layer's forward against values worked out by hand. */
class LayersTest {
    @RegisterExtension final ScopePerTest scope = ScopePerTest.inference();

    @Test
    void linearIsXTimesWTransposedPlusB() {
        Linear linear = new Linear(3, 2, true);
        linear.weight.set(Ops.fromFloats(new float[] {1, 2, 3, -1, 0, 1}, 2, 3));
        linear.bias.set(Ops.fromFloats(new float[] {0.5f, -0.5f}, 2));
        Tensor x = Ops.fromFloats(new float[] {1, 1, 1, 2, 0, -1}, 2, 3);
        // rows: (1+2+3+0.5, -1+0+1-0.5) and (2+0-3+0.5, -2+0-1-0.5)
        assertArrayEquals(new float[] {6.5f, -0.5f, -0.5f, -3.5f}, Ops.toFloats(linear.forward(x)), 1e-6f);
        assertArrayEquals(new long[] {4, 5, 2}, Ops.shape(linear.forward(Ops.zeros(4, 5, 3))), "any leading dims");
        assertSame(linear.weight.t(), linear.weight(), "the projection's W is the parameter");

        Linear plain = new Linear(3, 2, false);
        assertNull(plain.bias);
        plain.weight.set(Ops.fromFloats(new float[] {1, 2, 3, -1, 0, 1}, 2, 3));
        assertArrayEquals(new float[] {6, 0}, Ops.toFloats(plain.forward(Ops.fromFloats(new float[] {1, 1, 1}, 1, 3))), 1e-6f);
    }

    @Test
    void convolutionSumsEachNeighbourhood() {
        Conv2d conv = new Conv2d(1, 1, 3, 1, 1);
        conv.weight.set(Ops.ones(1, 1, 3, 3));
        conv.bias.set(Ops.fromFloats(new float[] {0.5f}, 1));
        Tensor x = Ops.fromFloats(new float[] {1, 2, 3, 4, 5, 6, 7, 8, 9}, 1, 1, 3, 3);
        // zero padding: a corner sees 4 values, an edge 6, the centre all 9
        assertArrayEquals(new float[] {12.5f, 21.5f, 16.5f, 27.5f, 45.5f, 33.5f, 24.5f, 39.5f, 28.5f}, Ops.toFloats(conv.forward(x)), 1e-5f);

        Conv2d strided = new Conv2d(2, 3, 3, 2, 1);
        strided.weight.set(Ops.zeros(3, 2, 3, 3));
        strided.bias.set(Ops.fromFloats(new float[] {1, 2, 3}, 3));
        Tensor y = strided.forward(Ops.ones(4, 2, 8, 8));
        assertArrayEquals(new long[] {4, 3, 4, 4}, Ops.shape(y), "(8 + 2 - 3) / 2 + 1 = 4");
        assertEquals(3f, Ops.toFloats(y)[Math.toIntExact(Ops.numel(new long[] {3, 4, 4}) - 1)], "the last channel's bias");
    }

    @Test
    void embeddingLooksUpRows() {
        Embedding embedding = new Embedding(3, 2);
        embedding.weight.set(Ops.fromFloats(new float[] {0, 1, 2, 3, 4, 5}, 3, 2));
        Tensor ids = Ops.fromLongs(new long[] {2, 0, 2}, 1, 3);
        Tensor out = embedding.forward(ids);
        assertArrayEquals(new long[] {1, 3, 2}, Ops.shape(out));
        assertArrayEquals(new float[] {4, 5, 0, 1, 4, 5}, Ops.toFloats(out));
    }

    @Test
    void layerNormNormalisesTheLastDimension() {
        LayerNorm norm = new LayerNorm(3, 0);
        norm.weight.set(Ops.fromFloats(new float[] {1, 2, 1}, 3));
        norm.bias.set(Ops.fromFloats(new float[] {0, 0, 10}, 3));
        // row (1, 2, 3): mean 2, biased variance 2/3, so (x - 2) / sqrt(2/3) = (-1.2247, 0, 1.2247)
        double z = 1 / Math.sqrt(2.0 / 3);
        float[] out = Ops.toFloats(norm.forward(Ops.fromFloats(new float[] {1, 2, 3, 5, 5, 5.5f}, 2, 3)));
        assertEquals(-z, out[0], 1e-5);
        assertEquals(0, out[1], 1e-6);
        assertEquals(10 + z, out[2], 1e-5);
        // row (5, 5, 5.5): mean 5.1667, the same pattern scaled: (-0.7071, -0.7071 * 2, 10 + 1.4142)
        assertEquals(-Math.sqrt(0.5), out[3], 1e-4);
        assertEquals(-2 * Math.sqrt(0.5), out[4], 1e-4);
        assertEquals(10 + Math.sqrt(2), out[5], 1e-4);
    }

    @Test
    void groupNormNormalisesEachGroupOfChannelsTogether() {
        GroupNorm norm = new GroupNorm(2, 4, 0);
        norm.weight.set(Ops.fromFloats(new float[] {1, 1, 2, 2}, 4));
        norm.bias.set(Ops.fromFloats(new float[] {0, 0, 0, 1}, 4));
        // [1, 4 channels, 1 x 2]: group 0 = channels 0-1 = (1, 3, 1, 3), mean 2, std 1; group 1 = (0, 0, 4, 4), mean 2, std 2
        Tensor x = Ops.fromFloats(new float[] {1, 3, 1, 3, 0, 0, 4, 4}, 1, 4, 1, 2);
        assertArrayEquals(new float[] {-1, 1, -1, 1, -2, -2, 3, 3}, Ops.toFloats(norm.forward(x)), 1e-5f);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new GroupNorm(3, 4, 1e-5));
        assertEquals("4 channels cannot be split into 3 groups", e.getMessage());
    }
}
