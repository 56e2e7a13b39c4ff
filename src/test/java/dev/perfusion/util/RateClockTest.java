package dev.perfusion.util;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class RateClockTest {
    private static final long S = 1_000_000_000L;

    /** The same task run again (the next concept's training, the next picture) counts from its own start. */
    @Test
    void aTaskRunAgainStartsItsClockAgain() {
        RateClock clock = new RateClock();
        assertTrue(clock.update("training", 1, 400, 0));
        assertFalse(clock.update("training", 101, 400, 10 * S));
        assertEquals(10.0, clock.rate(), 1e-9);
        assertEquals(29.9, clock.secondsLeft(), 1e-9);
        clock.update("training", 400, 400, 40 * S);
        assertTrue(clock.update("training", 1, 400, 100 * S), "its count went back: a new run");
        assertEquals(0.0, clock.elapsedSeconds());
        assertTrue(Double.isNaN(clock.rate()) && Double.isNaN(clock.secondsLeft()), "no unit done yet in this run");
        clock.update("training", 51, 400, 105 * S);
        assertEquals(10.0, clock.rate(), 1e-9, "not (51 units over 105 s) from the first run's start");
    }

    @Test
    void anotherTaskOrTotalStartsAgainAndAResumedTaskCountsOnlyItsOwnUnits() {
        RateClock clock = new RateClock();
        clock.update("pretraining", 250, 3000, 0);                 // resumed at step 250
        clock.update("pretraining", 260, 3000, 5 * S);
        assertEquals(2.0, clock.rate(), 1e-9);
        assertTrue(clock.update("denoising", 1, 25, 6 * S));
        assertTrue(clock.update("denoising", 2, 30, 7 * S), "another total: another run");
    }
}
