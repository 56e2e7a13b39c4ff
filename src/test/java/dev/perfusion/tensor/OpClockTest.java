package dev.perfusion.tensor;

import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class OpClockTest {
    @Test
    void timesTheHeavyOperationsOnlyWhileStarted() {
        try (Scope s = Scope.inference()) {
            var x = Ops.ones(1, 4, 8, 8);
            var w = Ops.ones(16, 4, 3, 3);
            Ops.conv2d(x, w, null, 1, 1);
            assertTrue(OpClock.stop().isEmpty(), "nothing is counted before start");
            OpClock.start();
            Ops.conv2d(x, w, null, 1, 1);
            Ops.conv2d(x, w, null, 1, 1);
            Ops.linear(Ops.ones(2, 4), Ops.ones(3, 4), null);
            Map<String, long[]> times = OpClock.stop();
            assertEquals(2, times.get("conv2d 3x3")[1], "two 3x3 convolutions");
            assertEquals(1, times.get("linear")[1]);
            assertTrue(times.get("conv2d 3x3")[0] > 0);
            Ops.conv2d(x, w, null, 1, 1);
            assertTrue(OpClock.stop().isEmpty(), "a stopped clock counts nothing, and stop() hands its counts over once");
            assertTrue(OpClock.describe(times, 1).contains("conv2d 3x3"));
        }
    }
}
