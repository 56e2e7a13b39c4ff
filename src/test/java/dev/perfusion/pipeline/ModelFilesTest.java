package dev.perfusion.pipeline;

import dev.perfusion.io.layout.ModelSource;
import dev.perfusion.io.layout.WeightHash;
import dev.perfusion.tensor.Ops;
import dev.perfusion.util.Progress;
import dev.perfusion.world.BundledWorld;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A model's hashes (what concepts and covariance files are tied to) are taken from its files when first asked, and each
 * part is read from its file by name when loaded: a model rewritten on disk meanwhile (a pretrain export, a convert into
 * the same folder) tied concepts trained on the weights in memory to the new file's, or loaded half of each.
 */
class ModelFilesTest {
    @TempDir Path tmp;

    private static StableDiffusion load(Path model, Progress progress) throws IOException {
        return StableDiffusion.load(model, ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float, progress);
    }

    @Test
    void aModelRewrittenAfterItWasReadIsNotHashedFromTheNewFiles() throws IOException {
        Path model = BundledWorld.copyOfModel(tmp.resolve("m"));
        StableDiffusion sd = load(model, Progress.NONE);
        assertTrue(sd.filesUnchanged());
        String textEncoder = sd.textEncoderHash();

        BundledWorld.rewriteUNet(model, 1.001);
        assertFalse(sd.filesUnchanged());
        UncheckedIOException e = assertThrows(UncheckedIOException.class, sd::unetHash);
        assertTrue(e.getMessage().contains(model + " changed on disk since this model was read"), e.getMessage());
        assertTrue(e.getMessage().contains("read the model again"), e.getMessage());
        assertEquals(textEncoder, sd.textEncoderHash(), "a hash taken before the change stays the model's");

        StableDiffusion again = load(model, Progress.NONE);
        assertEquals(WeightHash.sampled(ModelSource.resolve(model, ModelSource.Options.defaults()).unetWeights()), again.unetHash());
    }

    /** What changes beside a model without changing it (a git clone's .git/, an editor's swap file, a dangling link) leaves it as read. */
    @Test
    void whatIsNotTheModelDoesNotChangeIt() throws IOException {
        Path model = BundledWorld.copyOfModel(tmp.resolve("m"));
        java.nio.file.Files.createDirectories(model.resolve(".git"));
        java.nio.file.Files.writeString(model.resolve(".git/index"), "1");
        StableDiffusion sd = load(model, Progress.NONE);
        java.nio.file.Files.writeString(model.resolve(".git/index"), "22");
        java.nio.file.Files.writeString(model.resolve("unet/.config.json.swp"), "x");
        java.nio.file.Files.createSymbolicLink(model.resolve("unet/diffusion_pytorch_model.bin"), tmp.resolve("pruned-blob"));
        assertTrue(sd.filesUnchanged());
        sd.unetHash();
        assertTrue(load(model, Progress.NONE).filesUnchanged(), "a dangling link is read past");
    }

    @Test
    void aModelRewrittenWhileItIsReadIsRefused() throws IOException {
        Path model = BundledWorld.copyOfModel(tmp.resolve("m"));
        Progress rewriteAfterTheUNet = new Progress() {
            @Override public void update(String task, long done, long total, String detail) {
                if (done == 2) {
                    try {
                        BundledWorld.rewriteUNet(model, 1.001);
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    }
                }
            }
            @Override public void message(String text) {}
        };
        IOException e = assertThrows(IOException.class, () -> load(model, rewriteAfterTheUNet));
        assertEquals(model + " changed on disk while it was being read (a copy or an export writing it?); read it again once it is written",
                e.getMessage());
        assertTrue(load(model, Progress.NONE).filesUnchanged(), "read whole once written");
    }
}
