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

    private final FileChannel channel;
    private final FileLock lock;

    private WorkFolderLock(FileChannel channel, FileLock lock) {
        this.channel = channel;
        this.lock = lock;
    }

    /** Takes {@code part}'s lock of {@code work}, or says which process holds it. */
    static WorkFolderLock take(Path work, Part part) throws IOException {
        FileChannel channel = open(work, part);
        FileLock lock;
        try {
            lock = channel.tryLock();
        } catch (OverlappingFileLockException e) { // held in this process
            lock = null;
        }
        if (lock == null) {
            channel.close();
            throw new IOException(work + " is in use: another pretraining run (" + holder(work, part) + ") is training " + part.what
                    + " there; wait for it to end, or give another work folder");
        }
        return held(channel, lock);
    }

    /**
     * Takes {@code part}'s lock of {@code work}, waiting for the process that holds it to end: the main run waits for a
     * decoder-only run beside it to finish the decoder, which it then takes as done.
     */
    static WorkFolderLock await(Path work, Part part, Progress progress) throws IOException {
        FileChannel channel = open(work, part);
        try {
            FileLock lock = channel.tryLock();
            if (lock == null) {
                progress.message("waiting for the run beside this one (" + holder(work, part) + ") to finish " + part.what.replace("its ", "the ") + " in " + work);
                lock = channel.lock();
            }
            return held(channel, lock);
        } catch (OverlappingFileLockException e) {
            channel.close();
            throw new IOException(work + " is in use: this process already trains " + part.what + " there");
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    private static FileChannel open(Path work, Part part) throws IOException {
        Files.createDirectories(work);
        return FileChannel.open(work.resolve(part.file), StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
    }

    private static WorkFolderLock held(FileChannel channel, FileLock lock) throws IOException {
        channel.truncate(0);
        channel.write(ByteBuffer.wrap(("process " + ProcessHandle.current().pid() + ", since " + Instant.now()).getBytes(StandardCharsets.UTF_8)), 0);
        channel.force(false);
        return new WorkFolderLock(channel, lock);
    }

    private static String holder(Path work, Part part) {
        try {
            String who = Files.readString(work.resolve(part.file), StandardCharsets.UTF_8).strip();
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
        }
    }
}
