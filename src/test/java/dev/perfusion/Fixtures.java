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
        String configured = System.getProperty("perfusion.shared");
        Path p = Path.of(configured != null ? configured : "../shared").toAbsolutePath().normalize();
        Assumptions.assumeTrue(Files.isDirectory(p.resolve("fixtures/sd-tiny")),
                "skipped: the reference fixtures are not at " + p + "/fixtures/sd-tiny (set -Dperfusion.shared=DIR)");
        return p;
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
