package dev.perfusion.pretrain;

import dev.perfusion.util.Progress;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;

/**
 * One process at a time trains each part of a work folder: two runs in one folder resume from the same checkpoint and
 * write over each other's checkpoints, samples and exported model. The stages up to the UNet and the decoder stage are
 * locked apart because the decoder stage may run beside them ({@code pretrain --decoder-only}). The lock is the
 * operating system's, so it goes with its process however that ends (a kill leaves no stale lock behind); the file
 * names the process that holds it.
 */
final class WorkFolderLock implements AutoCloseable {
    enum Part {
        STAGES(".stages.lock", "its contrastive, VAE or diffusion stage"),
        DECODER(".decoder.lock", "its decoder stage");

        final String file;
        final String what;

        Part(String file, String what) {
            this.file = file;
            this.what = what;
        }
    }

    /**
     * The lock files this process holds. The operating system's locks are per process, and closing any channel on a
     * locked file drops them, so a second take in this process is refused here, before any channel opens.
     */
    private static final java.util.Set<Path> HELD = java.util.concurrent.ConcurrentHashMap.newKeySet();

    private final Path file;
    private final FileChannel channel;
    private final FileLock lock;

    private WorkFolderLock(Path file, FileChannel channel, FileLock lock) {
        this.file = file;
        this.channel = channel;
        this.lock = lock;
    }

    /** Takes {@code part}'s lock of {@code work}, or says which process holds it. */
    static WorkFolderLock take(Path work, Part part) throws IOException {
        return acquire(work, part, null);
    }

    /**
     * Takes {@code part}'s lock of {@code work}, waiting for the process that holds it to end: the main run waits for a
     * decoder-only run beside it to finish the decoder, which it then takes as done.
     */
    static WorkFolderLock await(Path work, Part part, Progress progress) throws IOException {
        return acquire(work, part, progress);
    }

    /** The lock, at once or, with {@code waiting}, once its holder ends (said there); refused otherwise. */
    private static WorkFolderLock acquire(Path work, Part part, Progress waiting) throws IOException {
        Path file = claim(work, part);
        FileChannel channel = null;
        try {
            channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
            FileLock lock = tryLock(channel);
            if (lock == null && waiting == null) {
                throw new IOException(work + " is in use: another pretraining run (" + holder(file) + ") is training " + part.what
                        + " there; wait for it to end, or give another work folder");
            }
            if (lock == null) {
                waiting.message("waiting for the run beside this one (" + holder(file) + ") to finish " + part.what.replace("its ", "the ") + " in " + work);
                lock = channel.lock();
            }
            return held(file, channel, lock);
        } catch (IOException | RuntimeException e) {
            if (channel != null) channel.close();
            HELD.remove(file);
            throw e;
        }
    }

    /** The part's lock file, claimed for this process (refused when this process holds it already). */
    private static Path claim(Path work, Part part) throws IOException {
        Files.createDirectories(work);
        Path file = work.toRealPath().resolve(part.file);
        if (!HELD.add(file)) throw new IOException(work + " is in use: this process already trains " + part.what + " there");
        return file;
    }

    private static FileLock tryLock(FileChannel channel) throws IOException {
        try {
            return channel.tryLock();
        } catch (OverlappingFileLockException e) { // held through a channel this class did not open
            return null;
        }
    }

    private static WorkFolderLock held(Path file, FileChannel channel, FileLock lock) throws IOException {
        channel.truncate(0);
        channel.write(ByteBuffer.wrap(("process " + ProcessHandle.current().pid() + ", since " + Instant.now()).getBytes(StandardCharsets.UTF_8)), 0);
        channel.force(false);
        return new WorkFolderLock(file, channel, lock);
    }

    /** Who holds the lock, as the file names it; read only when another process holds it (a read here would drop our own). */
    private static String holder(Path file) {
        try {
            String who = Files.readString(file, StandardCharsets.UTF_8).strip();
            return who.isEmpty() ? "process unknown" : who;
        } catch (IOException e) {
            return "process unknown";
        }
    }

    @Override
    public void close() throws IOException {
        try {
            lock.release();
        } finally {
            channel.close();
            HELD.remove(file);
        }
    }
}
