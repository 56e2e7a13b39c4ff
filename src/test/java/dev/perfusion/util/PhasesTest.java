package dev.perfusion.util;

import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class PhasesTest {
    @Test
    void eachLapChargesTheTimeSinceThePreviousOneToItsPhase() throws InterruptedException {
        Phases phases = new Phases();
        Thread.sleep(30);
        phases.lap("slow");
        phases.lap("fast");
        Thread.sleep(5);
        phases.skip();
        phases.lap("skipped after");
        phases.lap("slow");
        Map<String, Double> s = phases.seconds();
        assertEquals(java.util.List.of("slow", "fast", "skipped after"), java.util.List.copyOf(s.keySet()), "phases in the order first seen");
        assertTrue(s.get("slow") >= 0.030, "the sleep is charged to 'slow': " + s);
        assertTrue(s.get("fast") < s.get("slow") && s.get("skipped after") < 0.005, "skip() drops the time before it: " + s);
        String text = phases.describe(2, "step");
        assertTrue(text.startsWith("slow ") && text.contains("fast ") && text.endsWith("per step"), text);

        phases.restart();
        assertTrue(phases.seconds().isEmpty(), "restart forgets what was charged");
    }
}
