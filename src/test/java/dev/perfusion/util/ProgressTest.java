package dev.perfusion.util;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** A library may report freely: a reporter made from a lambda takes updates, and messages cost it nothing. */
class ProgressTest {
    @Test
    void aLambdaReporterGetsUpdatesAndIgnoresMessagesUnlessItTakesThem() {
        List<String> seen = new ArrayList<>();
        Progress bar = (task, done, total, detail) -> seen.add(task + " " + done + "/" + total + " " + detail);
        bar.update("training", 3, 10, "loss 0.1");
        bar.message("a warning");
        assertEquals(List.of("training 3/10 loss 0.1"), seen, "message() is not routed to update()");
        Progress.NONE.update("anything", 1, 0, null);
        Progress.NONE.message(null);
    }
}
