package dev.perfusion.server;

import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.tensor.Ops;
import dev.perfusion.util.Progress;
import dev.perfusion.world.BundledWorld;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.ref.WeakReference;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class ModelsTest {
    @TempDir Path tmp;

    /**
     * A model's weights are freed only when the GC finds it unreachable, and the web app's heap barely moves: left to
     * the GC, every switch between two models added one's weights to the process (444 -> 640 MB over 16 switches of
     * the bundled models; an SD model's are gigabytes). The switch now collects the model before.
     */
    @Test
    void switchingModelsCollectsTheOneBefore() throws IOException {
        Path models = Files.createDirectories(tmp.resolve("models"));
        for (String name : new String[] {"a", "b"}) BundledWorld.copyOfModel(models.resolve(name));
        Models m = new Models(new Folder(models), Ops.cpu(), torch.ScalarType.Float);
        WeakReference<StableDiffusion> first = new WeakReference<>(m.load("a", Progress.NONE).sd);
        assertSame(first.get(), m.load("a", Progress.NONE).sd, "the same model stays loaded");
        // a server's model has lived through collections: its objects are old, which the young collections of the
        // next model's loading do not look at
        System.gc();
        System.gc();
        StableDiffusion second = m.load("b", Progress.NONE).sd;
        assertNull(first.get(), "the model before was collected when the next was loaded");
        assertNotNull(second);
    }

    /**
     * A model replaced on disk under the same name (a pretrain export, a convert) while the server ran: its jobs kept
     * the weights, hashes and C^-1 read before. It is now read again, saying so.
     */
    @Test
    void aModelReplacedOnDiskIsReadAgain() throws IOException {
        Path models = Files.createDirectories(tmp.resolve("models"));
        Path a = BundledWorld.copyOfModel(models.resolve("a"));
        Models m = new Models(new Folder(models), Ops.cpu(), torch.ScalarType.Float);
        StableDiffusion before = m.load("a", Progress.NONE).sd;
        String hashBefore = before.unetHash();
        assertSame(before, m.load("a", Progress.NONE).sd, "unchanged: the same model");

        BundledWorld.rewriteUNet(a, 1.001);
        java.util.List<String> said = new java.util.ArrayList<>();
        Progress listening = new Progress() {
            @Override public void update(String task, long done, long total, String detail) {}
            @Override public void message(String text) { said.add(text); }
        };
        StableDiffusion after = m.load("a", listening).sd;
        assertNotSame(before, after, "read again");
        assertNotEquals(hashBefore, after.unetHash(), "the new weights' hash");
        assertTrue(said.contains("model 'a' changed on disk since it was read; reading it again"), said.toString());
        assertSame(after, m.load("a", Progress.NONE).sd);
    }
}
