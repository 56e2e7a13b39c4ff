package dev.perfusion.io;

import dev.perfusion.util.Stopping;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.AccessDeniedException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/** Writes files whole or not at all: into a temporary file beside the target, then renamed over it. */
public final class AtomicFiles {
    private AtomicFiles() {}

    /** What an ordinary new file gets (umask 022); temporary files are created private (rw-------). */
    private static final java.util.Set<java.nio.file.attribute.PosixFilePermission> NEW_FILE =
            java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--");

    /** The file being replaced keeps its permissions; a new one is readable by all, as any file a tool writes. */
    private static void keepOrDefaultPermissions(Path tmp, Path target) throws IOException {
        if (!Files.getFileStore(tmp).supportsFileAttributeView(java.nio.file.attribute.PosixFileAttributeView.class)) return;
        Files.setPosixFilePermissions(tmp, Files.exists(target) ? Files.getPosixFilePermissions(target) : NEW_FILE);
    }

    /**
     * Temporary files and folders being written now: deleted if the process is stopped (Ctrl-C) before they are renamed,
     * once its work has ended at its step (which may finish a write, a checkpoint's, meanwhile).
     */
    private static final java.util.Set<Path> UNFINISHED = java.util.concurrent.ConcurrentHashMap.newKeySet();

    static {
        try {
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                Stopping.stopAndAwait(Stopping.GRACE_SECONDS);
                for (Path p : UNFINISHED) deleteQuietly(p);
            }, "perfusion-unfinished-files"));
        } catch (IllegalStateException e) {
            // first used as the process stops (a stopped run's last checkpoint): its files are renamed before the exit, or stay
        }
    }

    /** Marks {@code tmp} as being written: the process's end deletes it unless {@link #finished} was called first. */
    public static void unfinished(Path tmp) {
        UNFINISHED.add(tmp);
    }

    /** {@code tmp} was renamed into place or deleted: nothing is left to clean up. */
    public static void finished(Path tmp) {
        UNFINISHED.remove(tmp);
    }

    /**
     * A temporary folder of the system's that goes however its work ends: deleted on close, and by the process's end if
     * that comes first (Ctrl-C); a benchmark's gigabyte checkpoint is not left behind.
     */
    public record ScratchFolder(Path dir) implements AutoCloseable {
        public static ScratchFolder create(String prefix) throws IOException {
            Path dir = Files.createTempDirectory(prefix);
            unfinished(dir);
            return new ScratchFolder(dir);
        }

        @Override
        public void close() {
            deleteQuietly(dir);
            finished(dir);
        }
    }

    /**
     * Puts {@code staging}, a fully written folder beside {@code target}, in its place: the old folder is moved aside
     * (a rename cannot replace a folder), the new one renamed in, then the old one removed. A stop between the two
     * renames leaves the old folder whole under a hidden name beside the target ({@code .NAME-old-N}), never a mix of
     * the two. The new folder gets the old one's permissions, or an ordinary folder's (a temporary folder is private).
     */
    public static void replaceFolder(Path staging, Path target) throws IOException {
        if (Files.getFileStore(staging).supportsFileAttributeView(java.nio.file.attribute.PosixFileAttributeView.class)) {
            Files.setPosixFilePermissions(staging, Files.isDirectory(target) ? Files.getPosixFilePermissions(target)
                    : java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        }
        Path aside = null;
        if (Files.exists(target, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            aside = target.resolveSibling("." + target.getFileName() + "-old-" + System.nanoTime());
            Files.move(target, aside);
        }
        Files.move(staging, target);
        if (aside != null) deleteQuietly(aside);
    }

    private static void deleteQuietly(Path p) {
        try (java.util.stream.Stream<Path> all = Files.walk(p)) {
            for (Path q : all.sorted(java.util.Comparator.reverseOrder()).toList()) Files.deleteIfExists(q);
        } catch (IOException | java.io.UncheckedIOException e) {
            // the process is ending: what cannot be deleted now stays, hidden, beside the target
        }
    }

    @FunctionalInterface
    public interface Writer {
        void write(OutputStream out) throws IOException;
    }

    public static void write(Path target, byte[] bytes) throws IOException {
        write(target, out -> out.write(bytes));
    }

    public static void write(Path target, Writer writer) throws IOException {
        Path absolute = target.toAbsolutePath();
        Path dir = absolute.getParent();
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new IOException("cannot create output folder " + dir + ": " + e.getMessage(), e);
        }
        Path tmp;
        try {
            tmp = Files.createTempFile(dir, "." + absolute.getFileName(), ".part");
        } catch (AccessDeniedException e) {
            throw new IOException("cannot write to " + dir + ": permission denied", e);
        }
        unfinished(tmp);
        try {
            try (java.nio.channels.FileChannel channel = java.nio.channels.FileChannel.open(tmp, java.nio.file.StandardOpenOption.WRITE);
                 OutputStream out = new java.io.BufferedOutputStream(java.nio.channels.Channels.newOutputStream(channel), 1 << 20)) {
                writer.write(out);
                out.flush();
                channel.force(true); // on disk before the rename: a crash just after it leaves the whole file, not an empty one
            }
            keepOrDefaultPermissions(tmp, absolute);
            try {
                Files.move(tmp, absolute, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, absolute, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            Files.deleteIfExists(tmp);
            // ImageIO says only "I/O error writing PNG file!": name the file and what the system said (a full disk)
            throw new IOException("cannot write " + absolute + ": " + deepestMessage(e), e);
        } catch (RuntimeException e) {
            Files.deleteIfExists(tmp);
            throw e;
        } finally {
            finished(tmp);
        }
    }

    /** The message of the innermost cause that has one: what the system reported, under any wrappers. */
    static String deepestMessage(Throwable e) {
        String message = e.toString();
        for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (t.getMessage() != null && !t.getMessage().isBlank()) message = t.getMessage();
        }
        return message;
    }
}
