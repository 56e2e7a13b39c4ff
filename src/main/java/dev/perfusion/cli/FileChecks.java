package dev.perfusion.cli;

import dev.perfusion.perfusion.ConceptFile;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Checks of the files a command reads and writes, made before any model is loaded, with messages naming the path. */
final class FileChecks {
    private FileChecks() {}

    /** Creates {@code dir} if needed and makes sure a file can be written in it. */
    static void writableFolder(Path dir) throws IOException {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new IOException("cannot create output folder " + dir + ": " + reason(dir, e), e);
        }
        if (!Files.isWritable(dir)) throw new IOException("output folder " + dir + " is not writable");
        // access rights are not the whole story (read-only mounts, pseudo file systems): try it
        try {
            Files.delete(Files.createTempFile(dir, ".perfusion-write-check", ".tmp"));
        } catch (IOException e) {
            throw new IOException("output folder " + dir + " is not writable: " + reason(dir, e), e);
        }
    }

    /** A concept file, read; a folder or a model given in its place is named as such. */
    static ConceptFile concept(Path file) throws IOException {
        if (Files.isDirectory(file)) {
            throw new IOException(file + ": a folder" + (Files.isRegularFile(file.resolve("model_index.json")) ? " (a diffusers model)" : "")
                    + ", not a concept file (the .safetensors file 'train' writes)");
        }
        return ConceptFile.load(file);
    }

    private static String reason(Path dir, IOException e) {
        for (Path p = dir; p != null; p = p.getParent()) {
            if (Files.exists(p)) {
                if (!Files.isDirectory(p)) return p + " is a file, not a folder";
                break;
            }
        }
        if (e instanceof AccessDeniedException) return "permission denied";
        if (e instanceof FileSystemException f && f.getReason() != null) return f.getReason();
        return e.getMessage();
    }
}
