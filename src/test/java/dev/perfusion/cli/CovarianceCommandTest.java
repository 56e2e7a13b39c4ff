package dev.perfusion.cli;

import dev.perfusion.Fixtures;
import dev.perfusion.io.Png;
import dev.perfusion.io.Safetensors;
import dev.perfusion.perfusion.CaptionCorpus;
import dev.perfusion.world.HeldOut;
import dev.perfusion.world.Sample;
import dev.perfusion.world.WorldGenerator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** covariance --captions -> train --covariance -> the concept records it -> generate warns when another C^-1 is used. */
class CovarianceCommandTest {
    @TempDir Path tmp;


    private static CliRun run(String... args) {
        return CliRun.of(args);
    }

    @Test
    void aCovarianceFromOwnCaptionsTrainsAConceptThatSaysSo() throws Exception {
        System.setProperty("perfusion.cache", tmp.resolve("cache").toString());
        String model = Fixtures.diffusers().toString();
        Path captions = tmp.resolve("captions.txt");
        List<String> lines = CaptionCorpus.generic().captions(120, 5, w -> true);
        Files.writeString(captions, String.join("\n\n", lines) + "\n");
        Path c = tmp.resolve("c.safetensors");
        CliRun computed = run("covariance", "--model", model, "--captions", captions.toString(), "--out", c.toString());
        assertEquals(0, computed.rc(), computed.err());
        assertTrue(computed.out().contains("wrote " + c + ": C and C^-1 [32, 32] from 120 captions (9,240 token vectors)"), computed.out());
        Map<String, String> meta = Safetensors.open(c).metadata();
        assertEquals("file captions.txt", meta.get("corpus"));
        assertEquals(CaptionCorpus.sha256(lines), meta.get("corpus_captions_sha256"));

        Path images = Files.createDirectories(tmp.resolve("images"));
        List<Sample> views = new WorldGenerator(128).views(HeldOut.instances().get(1), 2, 5);
        for (int i = 0; i < views.size(); i++) Png.write(images.resolve("v" + i + ".png"), views.get(i).image(), Map.of());
        Path teddy = tmp.resolve("my-teddy.safetensors");
        CliRun train = run("train", "--model", model, "--images", images.toString(), "--word", "my-teddy", "--supercategory", "teddy",
                "--out", teddy.toString(), "--train-steps", "1", "--batch", "1", "--accumulate", "1", "--views", "1", "--covariance", c.toString());
        assertEquals(0, train.rc(), train.err());
        CliRun inspect = run("inspect", teddy.toString());
        assertTrue(inspect.out().matches("(?s).*training covariance file c\\.safetensors \\(sha256 [0-9a-f]{16}\\), C\\^-1 \\[32, 32\\], 120 captions of file captions\\.txt\n.*"),
                inspect.out());

        CliRun other = run("generate", "--model", model, "--prompt", "a my-teddy", "--concept", teddy.toString(), "--steps", "1",
                "--width", "64", "--height", "64", "--out", tmp.resolve("x.png").toString());
        assertEquals(0, other.rc(), other.err());
        assertTrue(other.out().contains("warning: " + teddy + ": concept 'my-teddy' was trained with C^-1 from file c.safetensors"), other.out());
        CliRun same = run("generate", "--model", model, "--prompt", "a my-teddy", "--concept", teddy.toString(), "--steps", "1",
                "--width", "64", "--height", "64", "--out", tmp.resolve("y.png").toString(), "--covariance", c.toString());
        assertEquals(0, same.rc(), same.err());
        assertFalse(same.out().contains("was trained with C^-1"), same.out());

        CliRun conceptSkip = run("generate", "--model", model, "--prompt", "a my-teddy", "--concept", teddy.toString(), "--steps", "1",
                "--clip-skip", "1", "--out", tmp.resolve("z.png").toString(), "--covariance", c.toString());
        assertEquals(2, conceptSkip.rc());
        assertTrue(conceptSkip.err().contains(teddy + ": concept 'my-teddy' was trained on the text encoder with clip skip 0, this run uses 1"), conceptSkip.err());
        CliRun wrongSkip = run("generate", "--model", model, "--prompt", "a my-teddy", "--concept", teddy.toString(), "--steps", "1",
                "--clip-skip", "1", "--force", "--out", tmp.resolve("z.png").toString(), "--covariance", c.toString());
        assertEquals(2, wrongSkip.rc());
        assertTrue(wrongSkip.err().contains("--covariance: " + c + ": computed at clip skip 0, but this model encodes at 1"), wrongSkip.err());
        CliRun inverseAlone = run("generate", "--model", model, "--prompt", "x", "--covariance-inverse", "--out", tmp.resolve("w.png").toString());
        assertEquals(2, inverseAlone.rc());
        assertTrue(inverseAlone.err().contains("--covariance-inverse says what a --covariance file holds"), inverseAlone.err());
        CliRun noCaptions = run("covariance", "--model", model, "--captions", tmp.resolve("none.txt").toString(), "--out", c.toString());
        assertEquals(2, noCaptions.rc());
        assertTrue(noCaptions.err().contains("none.txt: no such file"), noCaptions.err());
        CliRun npy = run("covariance", "--model", model, "--captions", captions.toString(), "--out", tmp.resolve("c.npy").toString());
        assertEquals(2, npy.rc());
        assertTrue(npy.err().contains("give a name ending in .safetensors"), npy.err());
        assertFalse(java.nio.file.Files.exists(tmp.resolve("c.npy")));
        // a caption longer than the text encoder reads counts up to its limit, and the run says so
        Path longer = tmp.resolve("long.txt");
        Files.writeString(longer, "a cat\n\n" + "a very long caption about a cat ".repeat(20) + "\n\na dog\n");
        CliRun cut = run("covariance", "--model", model, "--captions", longer.toString(), "--out", tmp.resolve("long.safetensors").toString());
        assertEquals(0, cut.rc(), cut.err());
        assertTrue(cut.out().contains("note: 1 of the 3 captions are longer than the text encoder reads"), cut.out());
    }
}
