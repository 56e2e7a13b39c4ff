package dev.perfusion.tensor;

import dev.perfusion.ChildJvm;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledOnOs;
import org.junit.jupiter.api.condition.OS;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Only the bundled libtorch is loaded: each check starts a fresh JVM on an empty JavaCPP cache (where the wrong
 * load order used to pick a system libtorch, e.g. Debian's python3-torch), and reads that JVM's /proc/self/maps.
 */
@EnabledOnOs(OS.LINUX)
class LibtorchLoadingTest {
    private static final Pattern TORCH_LIBRARY = Pattern.compile(".*/lib(torch|c10)[^/]*\\.so[.0-9]*");

    @TempDir
    Path tmp;

    /** What the child JVM runs: load, one tiny op, then list the files mapped into the process. */
    public static final class Child {
        public static void main(String[] args) throws IOException {
            Libtorch.ensureLoaded();
            try (Scope scope = Scope.inference();
                 FloatPointer data = new FloatPointer(1, 2, 3, 4)) {
                Tensor a = torch.from_blob(data, new long[] {2, 2}, new TensorOptions(torch.ScalarType.Float));
                Tensor product = a.matmul(torch.ones(2, 1));
                System.out.println("product " + product.get(0).item_float() + " " + product.get(1).item_float());
            }
            for (String f : Libtorch.mappedFiles(Files.readAllLines(Path.of("/proc/self/maps")))) {
                System.out.println("mapped " + f);
            }
        }
    }

    @Test
    void emptyCacheLoadsOnlyTheBundledLibtorch() throws Exception {
        Path cache = Files.createDirectory(tmp.resolve("cache"));
        Process child = start(cache, null, tmp.resolve("child.log"));
        assertLoadedOnlyBundled(child, cache, tmp.resolve("child.log"));
    }

    /**
     * Two JVMs extract to the same empty cache at once, with libraries named like libtorch's on LD_LIBRARY_PATH
     * (which the dynamic linker searches before the bundled folder, and JavaCPP's fallbacks search too).
     */
    @Test
    void twoProcessesStartingAtOnceOnAnEmptyCacheBothLoadOnlyTheBundledLibtorch() throws Exception {
        Path cache = Files.createDirectory(tmp.resolve("cache"));
        Path decoys = Files.createDirectory(tmp.resolve("decoys"));
        // Any real shared library with nothing but libc to link: what matters is that none of them is ever mapped.
        Path stand = Path.of(System.getProperty("java.home"), "lib", "libjsig.so");
        assertTrue(Files.isRegularFile(stand), "expected the JDK's " + stand + " to copy as a decoy");
        for (String name : List.of("libtorch_cpu.so", "libc10.so", "libc10_cuda.so", "libtorch_cuda.so")) {
            Files.copy(stand, decoys.resolve(name));
        }
        Process first = start(cache, decoys, tmp.resolve("first.log"));
        Process second = start(cache, decoys, tmp.resolve("second.log"));
        assertLoadedOnlyBundled(first, cache, tmp.resolve("first.log"));
        assertLoadedOnlyBundled(second, cache, tmp.resolve("second.log"));
    }

    @Test
    void mapsLinesGiveTheirFilesAndForeignTorchLibraries() throws IOException {
        Path bundled = Files.createDirectory(tmp.resolve("bundled"));
        Files.createFile(bundled.resolve("libtorch_cpu.so"));
        Files.createFile(bundled.resolve("libc10.so"));
        String own = bundled.toRealPath().resolve("libtorch_cpu.so").toString();
        List<String> maps = List.of(
                "7fbd7d400000-7fbd7e1b2000 r--p 00000000 fe:00 2147166    " + own,
                "7fbd7e1b2000-7fbd8958e000 r-xp 00db2000 fe:00 2147166    " + own,
                "7fbda0c00000-7fbda140a000 r--p 00000000 fe:00 5595822    /usr/lib/x86_64-linux-gnu/libtorch_cpu.so.1.13.0",
                "7fbdecb98000-7fbdecbad000 r--p 00000000 fe:00 5595819    /usr/lib/x86_64-linux-gnu/libc10.so.1.13.0 (deleted)",
                "7fbe40221000-7fbe40261000 r--p 00000000 fe:00 5595813    /usr/lib/x86_64-linux-gnu/libsleef.so.3.5.1",
                "7fbe50295000-7fbe502be000 r--p 00000000 fe:00 2147164    /opt/my libs/libtorch.so",
                "7ffd5e9f1000-7ffd5ea12000 rw-p 00000000 00:00 0          [stack]",
                "7fbe50000000-7fbe50021000 rw-p 00000000 00:00 0 ");
        assertEquals(List.of(own, "/usr/lib/x86_64-linux-gnu/libtorch_cpu.so.1.13.0",
                "/usr/lib/x86_64-linux-gnu/libc10.so.1.13.0", "/usr/lib/x86_64-linux-gnu/libsleef.so.3.5.1",
                "/opt/my libs/libtorch.so"), Libtorch.mappedFiles(maps));
        assertEquals(List.of("/usr/lib/x86_64-linux-gnu/libtorch_cpu.so.1.13.0",
                "/usr/lib/x86_64-linux-gnu/libc10.so.1.13.0", "/opt/my libs/libtorch.so"),
                Libtorch.foreignLibraries(maps, bundled));
    }

    private Process start(Path cache, Path libraryPath, Path log) throws IOException {
        List<String> command = ChildJvm.command(Child.class, List.of("-Xmx512m", "-Djava.awt.headless=true",
                "-XX:ErrorFile=" + tmp.resolve("hs_err_pid%p.log"), "-Dorg.bytedeco.javacpp.cachedir=" + cache));
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
        if (libraryPath != null) pb.environment().put("LD_LIBRARY_PATH", libraryPath.toString());
        return pb.start();
    }

    private void assertLoadedOnlyBundled(Process child, Path cache, Path log) throws Exception {
        // A guard against a hung child, not a speed check: extraction takes seconds.
        if (!child.waitFor(10, TimeUnit.MINUTES)) {
            child.destroyForcibly();
            fail("the child JVM did not finish in 10 minutes; its output:\n" + Files.readString(log));
        }
        String output = Files.readString(log);
        assertEquals(0, child.exitValue(), () -> "the child JVM failed; its output:\n" + output + crashLogs());
        assertTrue(output.contains("product 3.0 7.0"), () -> "expected [[1,2],[3,4]] @ [[1],[1]] = [3, 7]:\n" + output);
        String bundled = cache.toRealPath() + "/";
        List<String> torch = output.lines().filter(l -> l.startsWith("mapped "))
                .map(l -> l.substring("mapped ".length())).filter(p -> TORCH_LIBRARY.matcher(p).matches())
                .collect(Collectors.toList());
        assertTrue(torch.stream().anyMatch(p -> p.startsWith(bundled) && p.endsWith("/libtorch_cpu.so")),
                () -> "expected the bundled libtorch_cpu.so from " + bundled + " among the mapped files: " + torch);
        List<String> foreign = torch.stream().filter(p -> !p.startsWith(bundled)).collect(Collectors.toList());
        assertTrue(foreign.isEmpty(), () -> "libtorch libraries mapped from outside the cache " + bundled + ": " + foreign);
    }

    /** The head of every JVM crash log the children left (they write them into the test's temp folder). */
    private String crashLogs() {
        StringBuilder s = new StringBuilder();
        try (var files = Files.list(tmp)) {
            for (Path f : (Iterable<Path>) files.filter(f -> f.getFileName().toString().startsWith("hs_err"))::iterator) {
                s.append("\n--- ").append(f).append(" (head)\n");
                Files.readAllLines(f).stream().limit(40).forEach(l -> s.append(l).append('\n'));
            }
        } catch (IOException e) {
            s.append("\n(cannot list the crash logs in ").append(tmp).append(": ").append(e.getMessage()).append(')');
        }
        return s.toString();
    }
}
