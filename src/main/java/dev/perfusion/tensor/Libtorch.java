package dev.perfusion.tensor;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.openblas.global.openblas;
import org.bytedeco.pytorch.global.torch;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Loads the libtorch shipped in the project's jars and no other, whatever libtorch the machine has installed.
 * Call {@link #ensureLoaded()} before anything touches {@code org.bytedeco.pytorch}.
 *
 * <p>JavaCPP, left alone, loads {@code libtorch.so} before {@code libtorch_cpu.so}, and extracts each library to its
 * cache only when it loads it. So on an empty cache the dynamic linker resolves {@code libtorch.so}'s dependency
 * {@code libtorch_cpu.so} before the bundled one exists beside it, and takes a system one (Debian's
 * {@code python3-torch} installs libtorch 1.13 in {@code /usr/lib/x86_64-linux-gnu}); with a full cache,
 * {@code LD_LIBRARY_PATH} still wins over the bundled folder. Two libtorch versions in one process crash. Here the
 * whole native folder is extracted first, then the core libraries are loaded by full path in dependency order, so
 * every later lookup by soname finds the copy already loaded.
 */
public final class Libtorch {
    private Libtorch() {}

    private static final String EXTENSION = "org.bytedeco.javacpp.platform.extension";
    /** libtorch, libtorch_cpu, libc10, libc10_cuda, libjnitorch and the like, any version suffix. */
    private static final Pattern TORCH_LIBRARY = Pattern.compile("lib(jni)?(torch|c10)\\w*\\.so(\\.\\d+)*");

    /** The folder the bundled natives were loaded from; computed once, under the JVM's class initialisation lock. */
    private static final Path FOLDER = load();

    /**
     * Loads the bundled libtorch on the first call (later calls return at once; safe from any thread) and returns
     * the cache folder it was loaded from.
     *
     * @throws IllegalStateException if the natives are not on the class path, or a libtorch from elsewhere is
     *         loaded in this process (another library brought it in first)
     */
    public static Path ensureLoaded() {
        return FOLDER;
    }

    private static Path load() {
        String platform = Loader.getPlatform();
        boolean gpu = torch.class.getResource("/org/bytedeco/pytorch/" + platform + "-gpu/") != null;
        if (!gpu && System.getProperty(EXTENSION) == null) {
            // The preset also lists the CUDA build's libraries; JavaCPP looks for each one in /usr/local/cuda and in
            // java.library.path (libc10_cuda.so, libtorch_cuda.so of a system libtorch). The CPU build needs none.
            System.setProperty(EXTENSION, "");
            Loader.loadProperties(true);
        }
        String folderName = "/org/bytedeco/pytorch/" + platform + (gpu ? "-gpu" : "") + "/";
        File folder;
        try {
            URL url = Loader.findResource(torch.class, folderName);
            if (url == null) {
                throw new IllegalStateException("no libtorch natives for " + platform + " on the class path: expected "
                        + folderName + " in the org.bytedeco:pytorch jar with classifier " + platform);
            }
            // One pass under JavaCPP's cache lock, which also serialises processes that start at the same time.
            folder = Loader.cacheResource(url);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot extract the libtorch natives to the JavaCPP cache "
                    + "(set -Dorg.bytedeco.javacpp.cachedir to a writable folder): " + e.getMessage(), e);
        }
        // libtorch_cpu needs OpenBLAS; JavaCPP's own preset loads the bundled one by full path.
        Loader.load(openblas.class);
        // The CUDA build's libtorch_cpu may need CUDA libraries that only JavaCPP's preset load brings in, so there
        // only the libraries that need nothing but the C and C++ runtimes are loaded ahead. Other systems' linkers
        // and file names differ; the problem was seen on Linux.
        List<String> ahead = !platform.startsWith("linux") ? List.of()
                : gpu ? List.of("libgomp.so.1", "libc10.so")
                : List.of("libgomp.so.1", "libc10.so", "libtorch_cpu.so", "libtorch.so");
        for (String name : ahead) {
            File library = new File(folder, name);
            if (!library.isFile()) {
                throw new IllegalStateException("the libtorch natives in " + folder + " have no " + name);
            }
            System.load(library.getAbsolutePath());
        }
        Loader.load(torch.class);
        Path loadedFrom = folder.toPath();
        checkNoOtherLibtorch(loadedFrom);
        return loadedFrom;
    }

    private static void checkNoOtherLibtorch(Path folder) {
        Path maps = Path.of("/proc/self/maps");
        if (!Files.isReadable(maps)) return; // not Linux: nothing to check against
        try {
            List<String> foreign = foreignLibraries(Files.readAllLines(maps), folder);
            if (!foreign.isEmpty()) {
                throw new IllegalStateException("libtorch libraries from outside the bundled natives in " + folder
                        + " are loaded in this process: " + foreign + " (something loaded them before "
                        + "Libtorch.ensureLoaded(), e.g. LD_PRELOAD); two libtorch versions in one process crash");
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + maps + ": " + e.getMessage(), e);
        }
    }

    /**
     * The files among the {@code /proc/<pid>/maps} lines {@code mapsLines} that are a libtorch or c10 library and
     * not one of the files in {@code bundledFolder} (compared by real path: the cache may hold symbolic links).
     */
    public static List<String> foreignLibraries(List<String> mapsLines, Path bundledFolder) throws IOException {
        Set<Path> bundled = new HashSet<>();
        try (Stream<Path> files = Files.list(bundledFolder)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                if (Files.exists(f)) bundled.add(f.toRealPath());
            }
        }
        List<String> foreign = new ArrayList<>();
        for (String path : mappedFiles(mapsLines)) {
            String name = path.substring(path.lastIndexOf('/') + 1);
            if (TORCH_LIBRARY.matcher(name).matches() && !bundled.contains(Path.of(path))) {
                foreign.add(path);
            }
        }
        return foreign;
    }

    /** The absolute file paths mapped in the {@code /proc/<pid>/maps} lines {@code mapsLines}, in order. */
    public static List<String> mappedFiles(List<String> mapsLines) {
        Set<String> paths = new LinkedHashSet<>();
        for (String line : mapsLines) {
            // address perms offset dev inode path; the path is the rest of the line and may contain spaces
            int slash = line.indexOf(" /");
            if (slash < 0) continue;
            String path = line.substring(slash + 1).strip();
            if (path.endsWith(" (deleted)")) path = path.substring(0, path.length() - " (deleted)".length());
            paths.add(path);
        }
        return new ArrayList<>(paths);
    }
}
