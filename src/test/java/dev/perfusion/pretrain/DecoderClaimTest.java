package dev.perfusion.pretrain;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The main run and a decoder-only run asking for different decoders, started in the same instant, could both pass the
 * check before either had recorded: the record is now checked again and written under a lock, so one of them is refused.
 */
class DecoderClaimTest {
    @TempDir Path tmp;

    private static final BaseModelRecipe ASKED = BaseModelRecipe.standard().quick(2, 2), OTHER = ASKED.withSteps(2, 2, 4);

    @Test
    void theLockIsNotTakenTwiceByOneThread() throws IOException {
        Path work = tmp.resolve("twice");
        try (DecoderClaim.Locked locked = DecoderClaim.Locked.of(work)) {
            IllegalStateException again = assertThrows(IllegalStateException.class, () -> DecoderClaim.record(work, ASKED, DecoderClaim.Kind.MAIN));
            assertTrue(again.getMessage().contains("held by this thread already"), again.getMessage());
        }
        DecoderClaim.record(work, ASKED, DecoderClaim.Kind.MAIN); // released with the close
        assertTrue(Files.exists(work.resolve(DecoderClaim.FILE)));
    }

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

    /**
     * Between processes, as the two runs are: while another process holds the lock, a decoder-only run's record waits;
     * the main run's record, written meanwhile, is read once the lock is free, and refuses it.
     */
    @Test
    void aRecordWaitsForAnotherProcessHoldingTheLockAndReadsWhatItWrote() throws Exception {
        Path work = tmp.resolve("processes"), elsewhere = tmp.resolve("elsewhere");
        DecoderClaim.record(elsewhere, ASKED, DecoderClaim.Kind.MAIN);
        Files.createDirectories(work);
        Process child = WorkFolderLockTest.holder(work, WorkFolderLockTest.DECODER_CLAIM);
        CompletableFuture<Void> decoderOnly;
        try {
            decoderOnly = CompletableFuture.runAsync(() -> {
                try {
                    DecoderClaim.record(work, OTHER, DecoderClaim.Kind.DECODER_ONLY);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
            Thread.sleep(500); // time for a record that would not wait to write its own (the copy below would then fail)
            // the main run's record, written while the other process holds the lock
            Files.copy(elsewhere.resolve(DecoderClaim.FILE), work.resolve(DecoderClaim.FILE));
            assertFalse(decoderOnly.isDone(), "the record waits while another process holds the lock");
        } finally {
            child.getOutputStream().close();
            assertEquals(0, child.waitFor());
        }
        ExecutionException refused = assertThrows(ExecutionException.class,
                () -> decoderOnly.get(5, TimeUnit.MINUTES));
        assertTrue(refused.getCause().getMessage().contains("the main run in this folder asked for another decoder"), refused.getCause().getMessage());
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
                    } catch (ExecutionException e) {
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
