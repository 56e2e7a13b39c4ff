package dev.perfusion.io;

import java.io.IOException;
import java.nio.file.FileVisitOption;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.stream.Stream;

/**
 * What a model's files are now: each file's path, size, modification time and file key (inode), to two folder levels
 * (a diffusers folder's parts; a single file is itself). Two stamps differ when a file was rewritten or replaced under
 * the same name, so that weights read before are not taken for the ones on disk.
 */
public final class FileStamp {
    private FileStamp() {}

    /** The stamp of {@code model}; "absent" where there is nothing (for the reader to say so in its own words). */
    public static String of(Path model) throws IOException {
        if (!Files.exists(model)) return "absent";
        StringBuilder stamp = new StringBuilder();
        try (Stream<Path> files = Files.walk(model, 2, FileVisitOption.FOLLOW_LINKS)) {
            for (Path f : files.sorted().toList()) {
                BasicFileAttributes a = Files.readAttributes(f, BasicFileAttributes.class);
                stamp.append(model.relativize(f)).append(' ').append(a.size()).append(' ').append(a.lastModifiedTime().toMillis())
                        .append(' ').append(a.fileKey()).append('\n');
            }
        }
        return stamp.toString();
    }
}
