package dev.perfusion;

import dev.perfusion.io.Npy;
import org.junit.jupiter.api.Assumptions;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The reference golden fixtures in ../shared/fixtures/sd-tiny; tests that need them skip, saying so, where absent. */
public final class Fixtures {
    private Fixtures() {}

    public static Path shared() {
        Path p = location();
        Assumptions.assumeTrue(present(), "skipped: the reference fixtures are not at " + p
                + "/fixtures/sd-tiny (set -Dperfusion.shared=DIR)");
        return p;
    }

    /**
     * Whether the fixtures are there, for a class's shared set-up: it loads them only when present and leaves the
     * skip to each test ({@link #shared()} in a @BeforeEach), so that every test is counted and shown as skipped
     * (an assumption failing in @BeforeAll hides the whole class from the counts).
     */
    public static boolean present() {
        return Files.isDirectory(location().resolve("fixtures/sd-tiny"));
    }

    private static Path location() {
        String configured = System.getProperty("perfusion.shared");
        return Path.of(configured != null ? configured : "../shared").toAbsolutePath().normalize();
    }

    public static Path sdTiny() {
        return shared().resolve("fixtures/sd-tiny");
    }

    public static Path diffusers() {
        return sdTiny().resolve("diffusers");
    }

    public static Path singleFile() {
        return sdTiny().resolve("single_file/sd-tiny.safetensors");
    }

    public static Npy.Array golden(String name) {
        try {
            return Npy.read(sdTiny().resolve("golden").resolve(name));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
