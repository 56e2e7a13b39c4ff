package dev.perfusion.io;

import dev.perfusion.ChildJvm;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class AtomicFilesTest {
    @TempDir Path tmp;

    @Test
    void aNewFileIsReadableByAllAndAReplacedFileKeepsItsPermissions() throws IOException {
        Path fresh = tmp.resolve("a.png");
        AtomicFiles.write(fresh, new byte[] {1, 2, 3});
        assertArrayEquals(new byte[] {1, 2, 3}, Files.readAllBytes(fresh));
        assertEquals("rw-r--r--", PosixFilePermissions.toString(Files.getPosixFilePermissions(fresh)));

        Files.setPosixFilePermissions(fresh, PosixFilePermissions.fromString("rw-rw----"));
        AtomicFiles.write(fresh, new byte[] {4});
        assertArrayEquals(new byte[] {4}, Files.readAllBytes(fresh));
        assertEquals("rw-rw----", PosixFilePermissions.toString(Files.getPosixFilePermissions(fresh)));
    }

    @Test
    void aFailedWriteLeavesTheOldFileAndNoTemporaryFile() throws IOException {
        Path file = tmp.resolve("concept.safetensors");
        AtomicFiles.write(file, new byte[] {7});
        IOException failed = assertThrows(IOException.class, () -> AtomicFiles.write(file, out -> {
            out.write(new byte[] {8, 9});
            // as ImageIO reports a full disk: its own words, the system's in the cause
            throw new javax.imageio.IIOException("I/O error writing PNG file!", new IOException("No space left on device"));
        }));
        assertEquals("cannot write " + file.toAbsolutePath() + ": No space left on device", failed.getMessage());
        assertArrayEquals(new byte[] {7}, Files.readAllBytes(file));
        try (var files = Files.list(tmp)) {
            assertEquals(1, files.count(), "only the file itself");
        }
    }

    /** A process stopped mid-write (Ctrl-C, a kill) left its hidden .part file behind; now it goes with the process. */
    @Test
    void aProcessStoppedWhileWritingLeavesNoTemporaryFile() throws Exception {
        Process child = new ProcessBuilder(ChildJvm.command(StoppedMidWrite.class, List.of("-Xmx64m"), tmp.toString())).redirectErrorStream(true).start();
        try {
            Path started = tmp.resolve("started");
            // waits for the child to be inside its write; a guard bounds it, not a speed check
            for (int i = 0; i < 6000 && !Files.exists(started) && child.isAlive(); i++) Thread.sleep(10);
            assertTrue(Files.exists(started), "the child ended without starting its write");
            try (var files = Files.list(tmp)) {
                assertEquals(1, files.filter(f -> f.getFileName().toString().endsWith(".part")).count(), "the write is under way");
            }
            child.destroy(); // SIGTERM, as Ctrl-C's SIGINT: the JVM's shutdown hooks run
            assertTrue(child.waitFor(2, java.util.concurrent.TimeUnit.MINUTES));
        } finally {
            child.destroyForcibly();
        }
        try (var files = Files.list(tmp)) {
            assertEquals(java.util.List.of(tmp.resolve("started")), files.toList(), "neither the file nor its temporary file");
        }
    }

    /** The child of {@link #aProcessStoppedWhileWritingLeavesNoTemporaryFile}: starts a write and waits inside it. */
    static final class StoppedMidWrite {
        public static void main(String[] args) throws Exception {
            Path dir = Path.of(args[0]);
            AtomicFiles.write(dir.resolve("concept.safetensors"), out -> {
                out.write(new byte[1 << 16]);
                out.flush();
                Files.createFile(dir.resolve("started"));
                try {
                    Thread.sleep(600_000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
        }
    }

    /** A benchmark stopped mid-run left its scratch folder (a 1.7 GB checkpoint at SD's size) in /tmp; it now goes with the process. */
    @Test
    void aScratchFolderGoesWithAProcessStoppedInsideIt() throws Exception {
        Path scratchRoot = java.nio.file.Files.createDirectories(tmp.resolve("system-tmp"));
        Process child = new ProcessBuilder(ChildJvm.command(StoppedInScratch.class, List.of("-Xmx64m", "-Djava.io.tmpdir=" + scratchRoot), tmp.toString()))
                .redirectErrorStream(true).start();
        try {
            Path started = tmp.resolve("started");
            for (int i = 0; i < 6000 && !Files.exists(started) && child.isAlive(); i++) Thread.sleep(10); // a guard, not a speed check
            assertTrue(Files.exists(started), "the child ended without making its scratch folder");
            try (var files = Files.list(scratchRoot)) {
                assertEquals(1, files.count(), "the scratch folder is there");
            }
            child.destroy();
            assertTrue(child.waitFor(2, java.util.concurrent.TimeUnit.MINUTES));
        } finally {
            child.destroyForcibly();
        }
        try (var files = Files.list(scratchRoot)) {
            assertEquals(0, files.count(), "the scratch folder went with the process");
        }
        Path made;
        try (AtomicFiles.ScratchFolder scratch = AtomicFiles.ScratchFolder.create("closed")) {
            made = scratch.dir();
            Files.writeString(Files.createDirectories(made.resolve("a")).resolve("b"), "x");
        }
        assertFalse(Files.exists(made), "closed: deleted with what it holds");
    }

    /** The child of {@link #aScratchFolderGoesWithAProcessStoppedInsideIt}: fills a scratch folder and waits inside it. */
    static final class StoppedInScratch {
        public static void main(String[] args) throws Exception {
            try (AtomicFiles.ScratchFolder scratch = AtomicFiles.ScratchFolder.create("perfusion-bench")) {
                Files.write(scratch.dir().resolve("unet.safetensors"), new byte[1 << 16]);
                Files.createFile(Path.of(args[0]).resolve("started"));
                Thread.sleep(600_000);
            }
        }
    }
}
