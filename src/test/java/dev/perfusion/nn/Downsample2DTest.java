package dev.perfusion.nn;

import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;

/** The UNet's downsampler (padding 1) and the VAE's (padding 0, padded only right and bottom, as the LDM does). */
class Downsample2DTest {
    /** A one-channel downsampler summing its 3x3 window, applied to ones of {@code height} x {@code width}. */
    private static float[][] windowSums(long padding, int height, int width) {
        Downsample2D down = new Downsample2D(1, padding);
        try (Scope s = Scope.inference()) {
            for (Param p : down.namedParameters().values()) {
                float[] v = new float[(int) Arrays.stream(p.shape()).reduce(1, (a, b) -> a * b)];
                Arrays.fill(v, p.path().endsWith("weight") ? 1f : 0f);
                p.set(Scope.keep(Ops.fromFloats(v, p.shape())));
            }
            float[] ones = new float[height * width];
            Arrays.fill(ones, 1f);
            Tensor out = down.forward(Ops.fromFloats(ones, 1, 1, height, width));
            long[] shape = Ops.shape(out);
            float[] flat = Ops.toFloats(out);
            float[][] rows = new float[(int) shape[2]][];
            for (int y = 0; y < rows.length; y++) rows[y] = Arrays.copyOfRange(flat, (int) (y * shape[3]), (int) ((y + 1) * shape[3]));
            return rows;
        }
    }

    @Test
    void paddingOneHalvesRoundingUpAndPadsEverySide() {
        float[][] out = windowSums(1, 5, 9);
        assertEquals(3, out.length);
        assertEquals(5, out[0].length);
        assertEquals(4f, out[0][0], "the top-left window reads the padding above and to the left");
        assertEquals(4f, out[2][4], "the bottom-right window reads the padding below and to the right");
        assertEquals(9f, out[1][1]);
    }

    @Test
    void paddingZeroHalvesRoundingDownAndPadsOnlyRightAndBottom() {
        float[][] even = windowSums(0, 6, 6);
        assertEquals(3, even.length, "6 rows halved to 3 (a 3x3 stride-2 convolution without the pad gives 2)");
        assertEquals(3, even[0].length);
        assertEquals(9f, even[0][0], "nothing padded above or to the left");
        assertEquals(4f, even[2][2], "padded below and to the right");
        float[][] odd = windowSums(0, 5, 9);
        assertEquals(2, odd.length);
        assertEquals(4, odd[0].length);
    }
}
