package dev.perfusion.pretrain;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class LossLogTest {
    @TempDir
    Path tmp;

    /**
     * A decoder stage run beside the main run interleaves its lines with the main run's: counted by clock resets, each
     * of its lines after a main-run line started a "new run" and the total grew by the main run's time at each.
     */
    @Test
    void runsBesideEachOtherEachCountTheirOwnTime() throws Exception {
        Path csv = tmp.resolve("losses.csv");
        LossLog main = new LossLog(csv, tmp.resolve("loss.png"), "main"), beside = new LossLog(csv, tmp.resolve("loss.png"), "beside");
        for (int i = 1; i <= 4; i++) {
            main.append("diffusion", i, 0.5, 1000 + i);
            beside.append("decoder", i, 0.1, 10 * i);
        }
        assertEquals(1004 + 40, new LossLog(csv, null).totalSeconds(), 1e-9);
        List<String> lines = Files.readAllLines(csv);
        assertEquals("stage,step,loss,seconds,run", lines.get(0));
        assertEquals("decoder,1,0.100000,10.0,beside", lines.get(2));
    }

    /** A log begun before the run column: its runs are told apart by their clocks starting again at 0; new lines count apart. */
    @Test
    void linesFromBeforeTheRunColumnCountByTheirClocks() throws Exception {
        Path csv = tmp.resolve("losses.csv");
        Files.writeString(csv, "stage,step,loss,seconds\nvae,1,0.5,100.0\nvae,2,0.4,200.0\nvae,3,0.3,50.0\ndiffusion,1,0.9,70.0\n");
        new LossLog(csv, null, "later").append("diffusion", 2, 0.8, 30);
        assertEquals(200 + 70 + 30, new LossLog(csv, null).totalSeconds(), 1e-9);
        assertThrows(IllegalStateException.class, () -> new LossLog(csv, null).append("vae", 1, 0, 0), "a log opened to read writes nothing");
    }
}
