package dev.perfusion.tensor;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** The benchmark's nominal FLOP counts: 2 per multiply-add of the heavy ops, counted only between start and stop. */
class FlopCounterTest {
    @Test
    void countsTheHeavyOpsByTheirShapesOnlyWhileStarted() {
        try (Scope s = Scope.inference()) {
            FlopCounter.start();
            Ops.matmul(Ops.ones(4, 5), Ops.ones(5, 6));                       // 2 * 4 * 5 * 6 = 240
            Ops.linear(Ops.ones(2, 3, 8), Ops.ones(7, 8), null);             // 2 * (2*3*8) * 7 = 672
            Ops.conv2d(Ops.ones(2, 3, 8, 8), Ops.ones(4, 3, 3, 3), null, 2, 1); // out 4x4: 2 * 2*4*4*4 * 3*3*3 = 6912
            Ops.attention(Ops.ones(1, 2, 10, 8), Ops.ones(1, 2, 6, 8), Ops.ones(1, 2, 6, 8), null, 0.5); // 4 * 160 * 6 = 3840
            Ops.add(Ops.ones(100), 1);                                         // not counted
            assertEquals(240 + 672 + 6912 + 3840, FlopCounter.stop());
            Ops.matmul(Ops.ones(4, 5), Ops.ones(5, 6));
            FlopCounter.start();
            assertEquals(0, FlopCounter.stop(), "nothing counted while stopped, and start resets");
        }
    }
}
