package dev.perfusion.fuzz;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The contract every fuzz target checks: for any bytes a reader returns a result or throws a clear error — an
 * {@link IOException} (or its unchecked wrapper) or an {@link IllegalArgumentException} whose message names the file
 * it read. Anything else (NullPointerException, an index or arithmetic error, a bare NumberFormatException, an
 * OutOfMemoryError, a native crash) escapes and Jazzer reports it as a finding.
 */
final class Readers {
    private Readers() {}

    interface Read<T> {
        T read() throws Exception;
    }

    /** The reader's result, or null when it refused the input with a clear error that mentions {@code named}. */
    static <T> T readOrRefuse(String named, Read<T> reader) throws Exception {
        try {
            return reader.read();
        } catch (NumberFormatException e) {
            throw e; // its message ("For input string: ...") says neither which file nor which field
        } catch (IOException | UncheckedIOException | IllegalArgumentException e) {
            String message = e.getMessage();
            if (message == null || !message.contains(named)) {
                throw new AssertionError("unclear error (should name " + named + "): " + e, e);
            }
            return null;
        }
    }

    /** A fresh file holding {@code bytes}, in a folder of its own that {@link #delete} removes. */
    static Path file(String name, byte[] bytes) throws IOException {
        Path dir = Files.createTempDirectory("perfusion-fuzz");
        return Files.write(dir.resolve(name), bytes);
    }

    /** {@code bytes} cut at its first {@code max - 1} NUL bytes: one input that holds several files. */
    static java.util.List<byte[]> parts(byte[] bytes, int max) {
        java.util.List<byte[]> out = new java.util.ArrayList<>();
        int start = 0;
        for (int i = 0; i < bytes.length && out.size() < max - 1; i++) {
            if (bytes[i] == 0) {
                out.add(java.util.Arrays.copyOfRange(bytes, start, i));
                start = i + 1;
            }
        }
        out.add(java.util.Arrays.copyOfRange(bytes, start, bytes.length));
        return out;
    }

    static void delete(Path file) throws IOException {
        Path dir = file.getParent();
        try (var files = Files.list(dir)) {
            for (Path f : files.toList()) Files.deleteIfExists(f);
        }
        Files.deleteIfExists(dir);
    }
}
