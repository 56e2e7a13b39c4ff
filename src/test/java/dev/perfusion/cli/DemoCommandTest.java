package dev.perfusion.cli;

import dev.perfusion.perfusion.ConceptFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** A short demo on the bundled model (few steps): every file it promises is there and well formed. */
class DemoCommandTest {
    @TempDir Path tmp;

    @Test
    void shortDemoWritesTheConceptAndItsImages() throws Exception {
        System.setProperty("perfusion.cache", tmp.resolve("cache").toString());
        Path out = tmp.resolve("demo");
        assertEquals(0, Main.run("demo", "--out", out.toString(), "--steps", "3", "--sampling-steps", "2"));
        ConceptFile concept = ConceptFile.load(out.resolve("my-teddy.safetensors"));
        assertEquals("my-teddy", concept.word());
        assertEquals("teddy", concept.supercategory());
        BufferedImage grid = ImageIO.read(out.resolve("grid.png").toFile());
        int cell = 128;
        assertEquals(DemoCommand.BETAS.size() * cell + cell, grid.getWidth(), "label column + one column per beta");
        assertEquals(DemoCommand.SCENES.size() * cell + 24, grid.getHeight(), "header + one row per scene");
        assertTrue(Files.size(out.resolve("together.png")) > 1000);
        assertTrue(Files.size(out.resolve("examples.png")) > 1000);
    }
}
