package dev.perfusion.pretrain;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The main run and a decoder-only run asking for different decoders, started in the same instant, could both pass the
 * check before either had recorded: the record is now checked again and written under a lock, so one of them is refused.
 */
class DecoderClaimTest {
    @TempDir Path tmp;

    private static final BaseModelRecipe ASKED = BaseModelRecipe.standard().quick(2, 2), OTHER = ASKED.withSteps(2, 2, 4);

    @Test
    void aRecordIsRefusedWhereTheOtherRunRecordedAnotherDecoderSinceItsCheck() throws IOException {
        Path work = tmp.resolve("since");
        DecoderClaim.check(work, OTHER, DecoderClaim.Kind.DECODER_ONLY);
        DecoderClaim.record(work, ASKED, DecoderClaim.Kind.MAIN); // the main run, in the meantime
        IOException refused = assertThrows(IOException.class, () -> DecoderClaim.record(work, OTHER, DecoderClaim.Kind.DECODER_ONLY));
        assertTrue(refused.getMessage().contains("the main run in this folder asked for another decoder (decoderSteps 2, now 4)"), refused.getMessage());
        String asked = Files.readString(work.resolve(DecoderClaim.FILE));
        assertTrue(asked.contains("\"main\"") && !asked.contains("\"decoder-only\""), "a refused run records nothing: " + asked);
        DecoderClaim.record(work, ASKED, DecoderClaim.Kind.DECODER_ONLY); // the same decoder is welcome
    }

    @Test
    void ofTwoRunsAskingForDifferentDecodersAtOnceOneIsRefused() throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            for (int round = 0; round < 25; round++) {
                Path work = tmp.resolve("round" + round);
                CountDownLatch start = new CountDownLatch(1);
                List<Future<?>> runs = new ArrayList<>();
                runs.add(pool.submit(() -> { start.await(); DecoderClaim.record(work, ASKED, DecoderClaim.Kind.MAIN); return null; }));
                runs.add(pool.submit(() -> { start.await(); DecoderClaim.record(work, OTHER, DecoderClaim.Kind.DECODER_ONLY); return null; }));
                start.countDown();
                int refused = 0;
                for (Future<?> run : runs) {
                    try {
                        run.get();
                    } catch (java.util.concurrent.ExecutionException e) {
                        assertInstanceOf(IOException.class, e.getCause());
                        assertTrue(e.getCause().getMessage().contains("asked for another decoder"), e.getCause().getMessage());
                        refused++;
                    }
                }
                assertEquals(1, refused, "round " + round + ": exactly one of the two runs is refused");
            }
        } finally {
            pool.shutdownNow();
        }
    }
}
