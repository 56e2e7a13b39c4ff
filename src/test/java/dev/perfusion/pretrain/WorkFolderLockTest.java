package dev.perfusion.pretrain;

import dev.perfusion.ChildJvm;
import dev.perfusion.util.Progress;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Two pretraining runs in one work folder resumed from one checkpoint and wrote over each other's, and a decoder-only
 * run beside the main run could train the decoder while the main run did: each part of a work folder is now one
 * process's at a time. Shown with a second process, as users meet it.
 */
class WorkFolderLockTest {
    @TempDir Path tmp;

    /** The decoder claim's lock, named as a part to {@link HoldsLock}. */
    static final String DECODER_CLAIM = "DECODER_CLAIM";

    /**
     * Holds a part's lock of a work folder, or the decoder claim's ({@value #DECODER_CLAIM}), until its input ends:
     * {@code HoldsLock WORK PART}.
     */
    public static final class HoldsLock {
        public static void main(String[] args) throws Exception {
            Path work = Path.of(args[0]);
            try (AutoCloseable lock = args[1].equals(DECODER_CLAIM) ? DecoderClaim.Locked.of(work) : WorkFolderLock.take(work, WorkFolderLock.Part.valueOf(args[1]))) {
                System.out.println("held");
                System.out.flush();
                while (System.in.read() != -1) { /* until the test closes our input */ }
            }
        }
    }

    private Process holder(Path work, WorkFolderLock.Part part) throws IOException {
        return holder(work, part.name());
    }

    /** A second process holding {@code part}'s lock of {@code work} (see {@link HoldsLock}) until its input is closed. */
    static Process holder(Path work, String part) throws IOException {
        Process child = new ProcessBuilder(ChildJvm.command(HoldsLock.class, List.of("-Xmx64m"), work.toString(), part))
                .redirectErrorStream(true).start();
        String first = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8)).readLine();
        assertEquals("held", first, "the child process took the lock");
        return child;
    }

    @Test
    void aSecondRunInAFolderInUseIsRefusedBeforeAnyWorkNamingTheProcess() throws Exception {
        BaseModelRecipe r = BaseModelRecipe.standard().quick(3, 3);
        Path work = tmp.resolve("work");
        Process child = holder(work, WorkFolderLock.Part.STAGES);
        try {
            IOException busy = assertThrows(IOException.class, () -> new Pretrainer(r, work, Progress.NONE).schedule(1, 1000).run());
            assertTrue(busy.getMessage().contains(work + " is in use: another pretraining run (process " + child.pid() + ", since ")
                    && busy.getMessage().contains("wait for it to end, or give another work folder"), busy.getMessage());
            assertFalse(Files.exists(work.resolve("losses.csv")), "nothing trained");
            assertFalse(Files.exists(work.resolve("tokenizer")), "nothing written");
            // the decoder stage has a lock of its own: it gets as far as its own check
            IOException notYet = assertThrows(IOException.class, () -> new Pretrainer(r, work, Progress.NONE).runDecoderStage());
            assertTrue(notYet.getMessage().contains("the VAE stage is not done yet"), notYet.getMessage());
        } finally {
            child.getOutputStream().close();
            assertEquals(0, child.waitFor());
        }
        assertEquals(1, new Pretrainer(r, work, Progress.NONE).schedule(1, 1000).timeLimit(0).run().step(), "the folder is free once its run ends");
    }

    @Test
    void aDecoderOnlyRunIsRefusedWhileAnotherTrainsTheDecoder() throws Exception {
        Path work = tmp.resolve("decoder");
        Process child = holder(work, WorkFolderLock.Part.DECODER);
        try {
            IOException busy = assertThrows(IOException.class,
                    () -> new Pretrainer(BaseModelRecipe.standard().quick(3, 3), work, Progress.NONE).runDecoderStage());
            assertTrue(busy.getMessage().contains("(process " + child.pid() + ", since ") && busy.getMessage().contains("is training its decoder stage"),
                    busy.getMessage());
        } finally {
            child.getOutputStream().close();
            assertEquals(0, child.waitFor());
        }
    }

    /** The main run reaching its decoder stage waits for a decoder-only run beside it, saying so, and goes on once it ends. */
    @Test
    void theMainRunWaitsForTheDecoderOnlyRunBesideIt() throws Exception {
        Path work = tmp.resolve("beside");
        Process child = holder(work, WorkFolderLock.Part.DECODER);
        CountDownLatch said = new CountDownLatch(1);
        StringBuilder message = new StringBuilder();
        Progress progress = new Progress() {
            @Override public void update(String task, long done, long total, String detail) {}
            @Override public void message(String text) {
                message.append(text);
                said.countDown();
            }
        };
        CompletableFuture<WorkFolderLock> taken = CompletableFuture.supplyAsync(() -> {
            try {
                return WorkFolderLock.await(work, WorkFolderLock.Part.DECODER, progress);
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        try {
            assertTrue(said.await(5, TimeUnit.MINUTES), "the waiting run says why it waits");
            assertTrue(message.toString().contains("waiting for the run beside this one (process " + child.pid()) && message.toString().contains("the decoder stage"),
                    message.toString());
            assertFalse(taken.isDone(), "it waits while the other holds the lock");
        } finally {
            child.getOutputStream().close();
            assertEquals(0, child.waitFor());
        }
        try (WorkFolderLock lock = taken.get(5, TimeUnit.MINUTES)) {
            // a second take in this process is refused before it opens the file (closing it would drop the lock)
            IOException again = assertThrows(IOException.class, () -> WorkFolderLock.take(work, WorkFolderLock.Part.DECODER));
            assertEquals(work + " is in use: this process already trains its decoder stage there", again.getMessage());
        }
        assertTrue(Files.readString(work.resolve(".decoder.lock")).startsWith("process " + ProcessHandle.current().pid()), "the lock named its holder");
        WorkFolderLock.take(work, WorkFolderLock.Part.DECODER).close(); // released with the close
    }
}
