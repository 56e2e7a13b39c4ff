package dev.perfusion.cli;

import dev.perfusion.Fixtures;
import dev.perfusion.io.Npy;
import dev.perfusion.io.Png;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class GenerateCommandTest {
    @TempDir Path tmp;

    @Test
    void generatesTheReferenceImageFromInitLatentsAndWritesParameters() throws Exception {
        Path png = tmp.resolve("astronaut.png");
        Path latents = tmp.resolve("final.npy");
        int rc = Main.run("generate", "--model", Fixtures.diffusers().toString(),
                "--prompt", "a photo of an astronaut riding a horse on mars", "--negative-prompt", "blurry, low quality",
                "--steps", "10", "--guidance", "7.5", "--scheduler", "ddim", "--width", "128", "--height", "128",
                "--init-latents", Fixtures.sdTiny().resolve("golden/pipe_ddim_initial_latents.npy").toString(),
                "--save-latents", latents.toString(), "--out", png.toString());
        assertEquals(0, rc);
        var image = ImageIO.read(png.toFile());
        var golden = ImageIO.read(Fixtures.sdTiny().resolve("golden/pipe_ddim_image.png").toFile());
        assertEquals(golden.getWidth(), image.getWidth());
        int worst = 0;
        for (int y = 0; y < golden.getHeight(); y++) {
            for (int x = 0; x < golden.getWidth(); x++) {
                int a = image.getRGB(x, y), b = golden.getRGB(x, y);
                for (int shift = 0; shift <= 16; shift += 8) worst = Math.max(worst, Math.abs(((a >> shift) & 255) - ((b >> shift) & 255)));
            }
        }
        assertTrue(worst <= 1, "PNG differs from the reference by " + worst + " levels");
        Map<String, String> text = Png.readText(png);
        assertTrue(text.get("parameters").startsWith("a photo of an astronaut riding a horse on mars\nNegative prompt: blurry, low quality"));
        assertTrue(text.get("parameters").contains("Steps: 10"));
        float[] saved = Npy.read(latents).floats();
        float[] expected = Fixtures.golden("pipe_ddim_final_latents.npy").floats();
        assertEquals(expected.length, saved.length);
    }

    @Test
    void seedsAreReproducibleAndCountWritesSeveralImages() throws Exception {
        Path a = tmp.resolve("a"), b = tmp.resolve("b");
        for (Path out : new Path[] {a, b}) {
            assertEquals(0, Main.run("generate", "--model", Fixtures.diffusers().toString(), "--prompt", "a cat",
                    "--steps", "2", "--width", "64", "--height", "64", "--seed", "7", "--count", "2", "--out", out.toString()));
        }
        try (var files = Files.list(a)) {
            assertEquals(2, files.count());
        }
        byte[] first = Files.readAllBytes(a.resolve("00000-7.png"));
        assertArrayEquals(first, Files.readAllBytes(b.resolve("00000-7.png")));
        assertFalse(java.util.Arrays.equals(first, Files.readAllBytes(a.resolve("00001-8.png"))));
    }

    @Test
    void badInputGivesOneClearLine() throws Exception {
        assertError("error: " , "--width and --height: a picture's width and height must be positive multiples of 8",
                "generate", "--model", Fixtures.diffusers().toString(), "--prompt", "x", "--width", "100", "--steps", "1");
        assertError("error: ", "no such file",
                "generate", "--model", tmp.resolve("missing.safetensors").toString(), "--prompt", "x");
        // the library says what it needs, the command which flag gives it
        assertError("error: " + Fixtures.singleFile() + ": unknown model family",
                "give a diffusers folder whose config files describe this model (--config DIR)",
                "generate", "--model", Fixtures.singleFile().toString(), "--prompt", "x", "--steps", "1");
        assertError("error: --family: " + Fixtures.diffusers() + ": a diffusers folder carries its own configs",
                "a model family applies to single-file checkpoints only",
                "generate", "--model", Fixtures.diffusers().toString(), "--family", "sd15", "--prompt", "x", "--steps", "1");
        assertError("error: give either --family or --config, not both", "",
                "generate", "--model", Fixtures.singleFile().toString(), "--family", "sd15", "--config", Fixtures.diffusers().toString(),
                "--prompt", "x", "--steps", "1");
        Path blocked = tmp.resolve("file");
        Files.writeString(blocked, "not a folder");
        assertError("error: ", "cannot create output folder",
                "generate", "--model", Fixtures.diffusers().toString(), "--prompt", "x", "--steps", "1",
                "--width", "64", "--height", "64", "--out", blocked.resolve("sub/x.png").toString());
        assertError("error: ", "Invalid value for option '--scheduler': 'nope' is not one of ddim, euler, euler-a, dpmpp-2m, pndm",
                "generate", "--model", Fixtures.diffusers().toString(), "--prompt", "x", "--steps", "1",
                "--width", "64", "--height", "64", "--scheduler", "nope", "--out", tmp.resolve("n.png").toString());
        assertFalse(Files.exists(tmp.resolve("n.png")), "no image is left behind after a failure");
    }

    private static void assertError(String prefix, String expected, String... args) {
        PrintStream old = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int rc;
        try {
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            rc = Main.run(args);
        } finally {
            System.setErr(old);
        }
        // the fuzz tests' agent, when it ran earlier in this JVM, reports classes it instruments on stderr
        String text = err.toString(StandardCharsets.UTF_8).replaceAll("(?m)^INFO: Instrumented .*\\R", "");
        assertNotEquals(0, rc);
        assertTrue(text.startsWith(prefix) && text.contains(expected), text);
    }
}
