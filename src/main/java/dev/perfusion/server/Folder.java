package dev.perfusion.server;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Pattern;

/**
 * A folder the server reads and writes in. A name a client sends becomes a path only here, and only when it is a
 * plain file name: letters, digits, '.', '_' and '-', no "..", no separator, not absolute; a symbolic link that
 * leads out of the folder is refused as well.
 */
final class Folder {
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");

    private final Path root;

    /** The folder at {@code dir}, created when missing. */
    Folder(Path dir) throws IOException {
        Files.createDirectories(dir);
        this.root = dir.toRealPath();
    }

    Path root() { return root; }

    /** Whether {@code name} may name a file in a folder. */
    static boolean validName(String name) {
        return name != null && NAME.matcher(name).matches() && !name.contains("..");
    }

    /** The checked name itself, or a 400 saying what a name may be. */
    static String checkName(String name, String what) {
        if (!validName(name)) {
            throw ApiException.badRequest(what + " '" + abbreviate(name) + "' is not a plain file name (letters, digits, '.', '_' and '-', "
                    + "at most 128, no '..')");
        }
        return name;
    }

    /** The path of {@code names} (a file, or folders then a file) inside this folder, each name checked. */
    Path resolve(String... names) {
        Path p = root;
        for (String name : names) p = p.resolve(checkName(name, "the name"));
        p = p.normalize();
        if (!p.startsWith(root) || p.equals(root)) throw ApiException.badRequest("a path outside the folder was refused");
        // a link inside the folder may point anywhere: follow it and look where it lands
        for (Path q = p; q != null && !q.equals(root); q = q.getParent()) {
            if (Files.isSymbolicLink(q)) {
                try {
                    if (!q.toRealPath().startsWith(root)) throw ApiException.badRequest("'" + root.relativize(q) + "' leads out of its folder");
                } catch (IOException e) {
                    throw ApiException.notFound("'" + root.relativize(q) + "' is a broken link");
                }
            }
        }
        return p;
    }

    /**
     * Whether {@code names} resolve inside this folder ({@link #resolve} would take them): what a listing shows, so
     * that it never lists, or reads, what a link out of the folder points to.
     */
    boolean inside(String... names) {
        try {
            resolve(names);
            return true;
        } catch (ApiException e) {
            return false;
        }
    }

    /** The existing regular file {@code names}, or a 404. */
    Path existingFile(String... names) {
        Path p = resolve(names);
        if (!Files.isRegularFile(p)) {
            throw ApiException.notFound("no such file: " + String.join("/", names));
        }
        return p;
    }

    private static String abbreviate(String s) {
        if (s == null) return "";
        return s.length() <= 60 ? s : s.substring(0, 57) + "...";
    }
}
