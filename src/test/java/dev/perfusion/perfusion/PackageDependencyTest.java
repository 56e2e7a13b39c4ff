package dev.perfusion.perfusion;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The method does not know the synthetic world or the programs built on it: {@code perfusion} names nothing in
 * {@code world}, {@code eval}, {@code pretrain} or {@code cli} (imports or qualified names), so the same C^-1 and
 * trainer serve a real Stable Diffusion.
 */
class PackageDependencyTest {
    private static final Path SOURCES = Path.of("src/main/java/dev/perfusion/perfusion");
    private static final Set<String> ABOVE = Set.of("world", "eval", "pretrain", "cli");
    private static final Pattern REFERENCE = Pattern.compile("\\bdev\\.perfusion\\.(\\w+)");

    @Test
    void perfusionNamesNoPackageBuiltOnIt() throws IOException {
        assertTrue(Files.isDirectory(SOURCES), "run from the project folder: no " + SOURCES.toAbsolutePath());
        List<String> found = new ArrayList<>();
        int files = 0;
        try (Stream<Path> sources = Files.list(SOURCES)) {
            for (Path f : (Iterable<Path>) sources.filter(p -> p.toString().endsWith(".java"))::iterator) {
                files++;
                List<String> lines = Files.readAllLines(f);
                for (int i = 0; i < lines.size(); i++) {
                    Matcher m = REFERENCE.matcher(lines.get(i));
                    while (m.find()) {
                        if (ABOVE.contains(m.group(1))) found.add(f.getFileName() + ":" + (i + 1) + ": " + lines.get(i).strip());
                    }
                }
            }
        }
        assertTrue(files > 5, "only " + files + " source files in " + SOURCES);
        assertEquals(List.of(), found);
    }
}
