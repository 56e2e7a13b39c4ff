package dev.perfusion.io;

import java.io.IOException;
import java.nio.file.FileVisitOption;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.EnumSet;
import java.util.Map;
import java.util.TreeMap;

/**
 * What a model's files are now: each file's path, size, modification time and file key (inode), to two folder levels
 * (a diffusers folder's parts; a single file is itself). Two stamps differ when a file was rewritten or replaced under
 * the same name, so that weights read before are not taken for the ones on disk. Folders themselves, hidden entries
 * (a git clone's {@code .git/}, an editor's swap files) and entries that cannot be read (a dangling link) are not part
 * of it: they change, or fail, without the model changing.
 */
public final class FileStamp {
    private FileStamp() {}

    /** The stamp of {@code model}; "absent" where there is nothing (for the reader to say so in its own words). */
    public static String of(Path model) throws IOException {
        if (!Files.exists(model)) return "absent";
        Map<String, String> files = new TreeMap<>();
        Files.walkFileTree(model, EnumSet.of(FileVisitOption.FOLLOW_LINKS), 2, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes a) {
                return !dir.equals(model) && hidden(dir) ? FileVisitResult.SKIP_SUBTREE : FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFile(Path f, BasicFileAttributes a) {
                if (a.isRegularFile() && (f.equals(model) || !hidden(f))) {
                    files.put(model.relativize(f).toString(), a.size() + " " + a.lastModifiedTime().toMillis() + " " + a.fileKey());
                }
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFileFailed(Path f, IOException e) {
                return FileVisitResult.CONTINUE;
            }
        });
        StringBuilder stamp = new StringBuilder();
        files.forEach((name, attributes) -> stamp.append(name).append(' ').append(attributes).append('\n'));
        return stamp.toString();
    }

    private static boolean hidden(Path p) {
        return p.getFileName() != null && p.getFileName().toString().startsWith(".");
    }
}
