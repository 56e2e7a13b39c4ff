package dev.perfusion.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.perfusion.io.Png;
import dev.perfusion.training.TrainingImages;

import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The image readers on any bytes: {@link Png#readText} (generation parameters of a PNG) and
 * {@link TrainingImages#read} (a user's photo, through ImageIO: PNG, JPEG, BMP, GIF). Seeds: tiny PNGs written by
 * {@link Png#write} with ASCII and non-Latin-1 text, and tiny JPEG, BMP and GIF files written by ImageIO.
 */
class ImageFuzzTest {
    @FuzzTest(maxDuration = "2m")
    void pngText(byte[] bytes) throws Exception {
        Path file = Readers.file("image.png", bytes);
        try {
            Map<String, String> text = Readers.readOrRefuse(file.toString(), () -> Png.readText(file));
            if (text != null) assertTrue(text.keySet().stream().noneMatch(k -> k == null), "keywords are present");
        } finally {
            Readers.delete(file);
        }
    }

    @FuzzTest(maxDuration = "2m")
    void trainingImage(byte[] bytes) throws Exception {
        Path file = Readers.file("photo.img", bytes);
        try {
            BufferedImage img = Readers.readOrRefuse(file.toString(), () -> TrainingImages.read(file));
            if (img != null) assertTrue(img.getWidth() > 0 && img.getHeight() > 0, "a decoded image has pixels");
        } finally {
            Readers.delete(file);
        }
    }
}
