package dev.perfusion.cli;

import dev.perfusion.Fixtures;
import dev.perfusion.io.Png;
import dev.perfusion.perfusion.ConceptFile;
import dev.perfusion.world.HeldOut;
import dev.perfusion.world.Sample;
import dev.perfusion.world.WorldGenerator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** train -> inspect -> generate with the concept (alone, combined, swept) through the CLI, on the fixture model. */
class TrainCommandTest {
    @TempDir Path tmp;

    /** Stopped by a signal, training said nothing (the JVM only ended): now it says where the work is and how to go on. */
    @Test
    void aTrainingStoppedFromOutsideSaysWhichCheckpointResumes() throws Exception {
        Path out = tmp.resolve("my-teddy.safetensors"), checkpoint = tmp.resolve("my-teddy.safetensors.ckpt");
        Process child = new ProcessBuilder(CliRun.childCommand("1g", List.of("-Dperfusion.cache=" + tmp.resolve("cache")),
                "train", "--images", dev.perfusion.world.Bundled.examples("my-teddy").toString(), "--word", "my-teddy", "--supercategory", "teddy",
                "--out", out.toString(), "--train-steps", "100000", "--checkpoint-every", "1", "--threads", "1"))
                .redirectErrorStream(true).redirectOutput(tmp.resolve("log").toFile()).start();
        try {
            // waits for the first checkpoint; a guard bounds it, not a speed check
            for (int i = 0; i < 60_000 && !Files.exists(checkpoint) && child.isAlive(); i++) Thread.sleep(10);
            assertTrue(Files.exists(checkpoint), Files.readString(tmp.resolve("log")));
            child.destroy(); // SIGTERM, as Ctrl-C's SIGINT: the JVM's shutdown hooks run
            assertTrue(child.waitFor(2, java.util.concurrent.TimeUnit.MINUTES));
        } finally {
            child.destroyForcibly();
        }
        String log = Files.readString(tmp.resolve("log"));
        assertTrue(log.matches("(?s).*\nstopped: no concept was written; " + java.util.regex.Pattern.quote(checkpoint.toString())
                + " holds step \\d+, and the same command with --resume goes on from it\n"), log);
        assertFalse(Files.exists(out));
        assertEquals("no concept was written, and no checkpoint yet (--checkpoint-every steps apart)",
                TrainCommand.stoppedMessage(tmp.resolve("other.safetensors")).strip());
    }

    @Test
    void trainInspectAndGenerateWithConcepts() throws Exception {
        System.setProperty("perfusion.cache", tmp.resolve("cache").toString());
        String model = Fixtures.diffusers().toString();
        Path images = Files.createDirectories(tmp.resolve("images"));
        List<Sample> views = new WorldGenerator(128).views(HeldOut.instances().get(1), 3, 5);
        for (int i = 0; i < views.size(); i++) Png.write(images.resolve("v" + i + ".png"), views.get(i).image(), Map.of());
        Path teddy = tmp.resolve("my-teddy.safetensors"), cat = tmp.resolve("my-cat.safetensors");
        for (String[] c : new String[][] {{"my-teddy", "teddy", teddy.toString(), "0.75"}, {"my-cat", "cat", cat.toString(), "0.65"}}) {
            assertEquals(0, Main.run("train", "--model", model, "--images", images.toString(), "--word", c[0], "--supercategory", c[1],
                    "--out", c[2], "--train-steps", "2", "--batch", "1", "--accumulate", "1", "--views", "1", "--covariance-captions", "200",
                    "--train-beta", c[3]));
        }
        String inspected = capture(() -> Main.run("inspect", teddy.toString()));
        assertTrue(inspected.contains("my-teddy (a kind of teddy)") && inspected.contains("6 cross-attention layers"), inspected);
        assertEquals("beta 0.75, tau 0.1", ConceptFile.load(teddy).settings().get("gate"), "the paper's training gate by default");
        assertEquals("beta 0.65, tau 0.1", ConceptFile.load(cat).settings().get("gate"), "--train-beta recorded in the file");

        Path both = tmp.resolve("both.png");
        assertEquals(0, Main.run("generate", "--model", model, "--prompt", "a my-teddy next to a my-cat", "--concept", teddy.toString(),
                "--concept", cat.toString(), "--beta", "0.6,0.7", "--steps", "2", "--width", "64", "--height", "64", "--out", both.toString()));
        assertTrue(Png.readText(both).get("parameters").contains("my-teddy.safetensors"));

        Path grid = tmp.resolve("sweep.png");
        assertEquals(0, Main.run("generate", "--model", model, "--prompt", "a my-teddy", "--prompt", "a my-teddy on the beach",
                "--concept", teddy.toString(), "--beta-sweep", "0.5,0.7,0.9", "--global-lock", "--steps", "2", "--width", "64",
                "--height", "64", "--out", grid.toString()));
        var image = ImageIO.read(grid.toFile());
        assertEquals(2 * 128 + 24, image.getHeight(), "two prompt rows under a header");
        assertTrue(image.getWidth() >= 3 * 128, "three beta columns");

        String error = capture(() -> Main.run("generate", "--model", model, "--prompt", "x", "--concept", teddy.toString(), "--tau", "0",
                "--steps", "1", "--width", "64", "--height", "64", "--out", tmp.resolve("bad.png").toString()));
        assertTrue(error.contains("--tau: the gate temperature tau must be in (0, 1]"), error);
        String notConcept = capture(() -> Main.run("inspect", Fixtures.diffusers().resolve("unet/diffusion_pytorch_model.safetensors").toString()));
        assertTrue(notConcept.contains("not a Perfusion concept file"), notConcept);
    }

    private static String capture(java.util.concurrent.Callable<Integer> run) throws Exception {
        PrintStream out = System.out, err = System.err;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try {
            PrintStream p = new PrintStream(buf, true, StandardCharsets.UTF_8);
            System.setOut(p);
            System.setErr(p);
            run.call();
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
        return buf.toString(StandardCharsets.UTF_8);
    }
}
