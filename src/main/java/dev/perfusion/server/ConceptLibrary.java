package dev.perfusion.server;

import dev.perfusion.perfusion.ConceptFile;
import dev.perfusion.perfusion.ConceptSummary;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;

/**
 * The concepts folder: one {@code NAME.safetensors} concept file per concept, named by NAME in the API. A file enters
 * it whole or not at all (uploads are checked to be concept files in a hidden temporary file first, then renamed).
 */
final class ConceptLibrary {
    static final String EXTENSION = ".safetensors";

    private final Folder folder;
    /** Summaries by file name and modification time and size: reading one means reading the file. */
    private final Map<String, Cached> summaries = new ConcurrentHashMap<>();

    private record Cached(long modified, long size, ConceptSummary summary, String error) {}

    /** A concept as the library lists it: its summary, or why its file cannot be read. */
    record Listed(String name, ConceptSummary summary, String error) {}

    ConceptLibrary(Folder folder) {
        this.folder = folder;
    }

    Path root() { return folder.root(); }

    List<Listed> list() throws IOException {
        List<Listed> out = new ArrayList<>();
        for (String name : names()) out.add(listed(name, folder.resolve(name + EXTENSION)));
        return out;
    }

    /** The library's concept names, sorted: its plain concept files, without the extension. */
    private List<String> names() throws IOException {
        List<String> out = new ArrayList<>();
        try (Stream<Path> s = Files.list(folder.root())) {
            for (Path p : s.sorted().toList()) {
                String file = p.getFileName().toString();
                if (!file.endsWith(EXTENSION) || !Folder.validName(file) || !folder.inside(file) || !Files.isRegularFile(p)) continue;
                out.add(nameOf(file));
            }
        }
        return out;
    }

    /** The concept NAME's summary, or a 404. */
    Listed get(String name) {
        Path p = path(name);
        if (!Files.isRegularFile(p)) throw ApiException.notFound("no concept '" + name + "' in the library");
        return listed(name, p);
    }

    boolean exists(String name) {
        return Files.exists(path(name));
    }

    /** The name of a concept in the library that is {@code name} in another case (prompts do not tell them apart), if any. */
    Optional<String> otherCase(String name) throws IOException {
        return names().stream().filter(n -> n.equalsIgnoreCase(name) && !n.equals(name)).findFirst();
    }

    /** The concept file of NAME, read (on the worker, which then holds its tensors). */
    ConceptFile load(String name) throws IOException {
        Path p = path(name);
        if (!Files.isRegularFile(p)) throw ApiException.notFound("no concept '" + name + "' in the library");
        return ConceptFile.load(p);
    }

    Path path(String name) {
        Folder.checkName(name, "the concept name");
        return folder.resolve(name + EXTENSION);
    }

    /**
     * Adds an uploaded concept file as NAME: written to a hidden temporary file, read as a concept file (anything else
     * is refused with the reader's message), then renamed into place. An existing NAME is replaced only when
     * {@code overwrite}.
     */
    Listed upload(String name, InputStream content, long maxBytes, boolean overwrite) throws IOException {
        Path target = path(name);
        if (Files.exists(target) && !overwrite) throw ApiException.conflict("a concept '" + name + "' is already in the library; "
                + "delete it first or send overwrite=true");
        Path tmp = Files.createTempFile(folder.root(), ".upload-", ".part");
        try {
            long written;
            try (var out = Files.newOutputStream(tmp)) {
                written = content.transferTo(new LimitedOutput(out, maxBytes));
            }
            if (written == 0) throw ApiException.badRequest("the uploaded concept file is empty");
            try {
                ConceptFile.load(tmp);
            } catch (IOException | RuntimeException e) {
                throw ApiException.badRequest("not a concept file: " + e.getMessage().replace(tmp.toString() + ": ", "")
                        .replace(tmp.toString(), "the upload"));
            }
            move(tmp, target, overwrite);
        } finally {
            Files.deleteIfExists(tmp);
        }
        return get(name);
    }

    /** Puts a concept file a training job wrote into the library as NAME (renamed, so it appears whole). */
    Listed install(Path trained, String name, boolean overwrite) throws IOException {
        Path target = path(name);
        if (Files.exists(target) && !overwrite) throw ApiException.conflict("a concept '" + name + "' appeared in the library while "
                + "training; the trained file stays at " + trained);
        Path tmp = Files.createTempFile(folder.root(), ".train-", ".part");
        try {
            Files.copy(trained, tmp, StandardCopyOption.REPLACE_EXISTING);
            move(tmp, target, overwrite);
        } finally {
            Files.deleteIfExists(tmp);
        }
        return get(name);
    }

    void delete(String name) throws IOException {
        Path p = path(name);
        if (!Files.deleteIfExists(p)) throw ApiException.notFound("no concept '" + name + "' in the library");
        summaries.remove(p.getFileName().toString());
    }

    static String nameOf(String file) {
        return file.substring(0, file.length() - EXTENSION.length());
    }

    /**
     * Renames the complete {@code tmp} to {@code target}: replacing it when {@code overwrite}, else as a new link that
     * fails when the name is taken (a rename would replace a concept that appeared meanwhile).
     */
    private static void move(Path tmp, Path target, boolean overwrite) throws IOException {
        if (!overwrite) {
            try {
                Files.createLink(target, tmp);
                return;
            } catch (java.nio.file.FileAlreadyExistsException e) {
                throw ApiException.conflict("a concept '" + nameOf(target.getFileName().toString()) + "' is already in the library");
            } catch (UnsupportedOperationException | IOException e) {
                if (Files.exists(target)) throw ApiException.conflict("a concept '" + nameOf(target.getFileName().toString()) + "' is already in the library");
                // a file system without hard links: a plain rename below
            }
        }
        try {
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    private Listed listed(String name, Path p) {
        String file = p.getFileName().toString();
        try {
            long modified = Files.getLastModifiedTime(p).toMillis(), size = Files.size(p);
            Cached c = summaries.get(file);
            if (c == null || c.modified() != modified || c.size() != size) {
                try {
                    c = new Cached(modified, size, ConceptSummary.of(p, ConceptFile.load(p)), null);
                } catch (IOException | RuntimeException e) {
                    c = new Cached(modified, size, null, e.getMessage());
                }
                summaries.put(file, c);
            }
            return new Listed(name, c.summary(), c.error());
        } catch (IOException e) {
            return new Listed(name, null, e.getMessage());
        }
    }

    /** Passes bytes on up to a limit; past it the upload is refused as too large. */
    static final class LimitedOutput extends java.io.FilterOutputStream {
        private final long max;
        private long count;

        LimitedOutput(java.io.OutputStream out, long max) {
            super(out);
            this.max = max;
        }

        @Override
        public void write(int b) throws IOException {
            grow(1);
            out.write(b);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            grow(len);
            out.write(b, off, len);
        }

        private void grow(long n) {
            count += n;
            if (count > max) throw ApiException.tooLarge(String.format(java.util.Locale.ROOT, "the upload is larger than %.1f MiB", max / 1048576.0));
        }
    }
}
