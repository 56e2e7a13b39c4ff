package dev.perfusion.tensor;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** In this JVM: the loader names the folder its libtorch came from, every time. */
class LibtorchTest {
    @Test
    void ensureLoadedReturnsTheBundledNativesFolder() {
        Path folder = Libtorch.ensureLoaded();
        assertSame(folder, Libtorch.ensureLoaded(), "loaded once");
        if (System.getProperty("os.name").startsWith("Linux")) {
            for (String library : new String[] {"libtorch_cpu.so", "libc10.so", "libjnitorch.so"}) {
                assertTrue(Files.isRegularFile(folder.resolve(library)), library + " in " + folder);
            }
        }
    }
}
