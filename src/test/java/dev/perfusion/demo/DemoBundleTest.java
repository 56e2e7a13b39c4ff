package dev.perfusion.demo;

import dev.perfusion.world.Bundled;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The demo's example photos are rendered at the size of the model they are bundled for. */
class DemoBundleTest {
    @TempDir Path home;

    @Test
    void examplesAreRenderedAtTheModelsPictureSize() throws Exception {
        String before = System.getProperty("perfusion.home");
        System.setProperty("perfusion.home", home.toString()); // written under a copy's home, not the project's
        try {
            // a picture of a set before (another count) was trained on beside the new ones; the set is now replaced whole
            Path before7 = Files.createDirectories(Bundled.examples(Demo.WORD)).resolve("07.png");
            Files.write(before7, new byte[] {1});
            List<Path> folders = DemoBundle.writeExamples(128);
            assertEquals(List.of(Bundled.examples(Demo.WORD), Bundled.examples(Demo.SECOND_WORD)), folders);
            for (Path folder : folders) {
                assertEquals(home, folder.getParent().getParent().getParent(), folder.toString());
                try (var files = Files.list(folder)) {
                    List<Path> photos = files.sorted().toList();
                    assertEquals(6, photos.size(), photos.toString());
                    assertEquals("01.png", photos.get(0).getFileName().toString());
                    assertEquals("rwxr-xr-x", java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(folder)),
                            "an ordinary folder, not the private temporary one it was written in");
                    for (Path photo : photos) {
                        BufferedImage image = javax.imageio.ImageIO.read(photo.toFile());
                        assertEquals(128, image.getWidth(), photo.toString());
                        assertEquals(128, image.getHeight(), photo.toString());
                    }
                }
            }
            try (var left = Files.list(Bundled.examples(Demo.WORD).getParent())) {
                assertEquals(2, left.count(), "only the two sets: no staging or old folder left");
            }
        } finally {
            if (before == null) System.clearProperty("perfusion.home");
            else System.setProperty("perfusion.home", before);
        }
    }
}
