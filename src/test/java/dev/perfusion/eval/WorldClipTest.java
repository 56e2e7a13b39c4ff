package dev.perfusion.eval;

import dev.perfusion.pretrain.BaseModelRecipe;
import dev.perfusion.pretrain.Pretrainer;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.util.Progress;
import dev.perfusion.world.Sample;
import dev.perfusion.world.WorldGenerator;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The world's CLIP as a judge, on towers from a two-step contrastive run: its scores against the cosines they are made of. */
class WorldClipTest {
    @TempDir static Path tmp;
    static Path folder;
    static WorldClip clip;
    static Tensor pictures;
    static List<String> captions;

    @BeforeAll
    static void trainTinyTowers() throws IOException {
        BaseModelRecipe r = BaseModelRecipe.frozenText().withText(32, 1, 2);
        r = r.withContrastive(r.contrastive().withSteps(2));
        Pretrainer trainer = new Pretrainer(r, tmp.resolve("work"), Progress.NONE);
        assertTrue(trainer.runContrastiveStage().finished());
        folder = tmp.resolve("world-clip");
        trainer.exportTowers(folder);
        clip = WorldClip.load(folder);
        WorldGenerator world = new WorldGenerator();
        List<Sample> samples = List.of(world.sample(1), world.sample(2), world.sample(3));
        pictures = Scope.keep(AttributeClassifier.pictures(samples));
        captions = samples.stream().map(Sample::caption).toList();
    }

    /** Each score kept its embeddings past its own scope, for the GC: now they go with the scope. */
    @Test
    void scoringLeavesNoNativeObjectsBehind() {
        try (Scope s = Scope.inference()) {
            Tensor reference = clip.imageEmbeds(pictures);
            clip.imageSimilarity(pictures, reference);
            clip.textSimilarity(pictures, captions);
            long before = org.bytedeco.javacpp.Pointer.totalCount();
            for (int i = 0; i < 20; i++) {
                clip.imageSimilarity(pictures, reference);
                clip.textSimilarity(pictures, captions);
            }
            long left = org.bytedeco.javacpp.Pointer.totalCount() - before;
            assertTrue(left < 30, "native objects left by 20 scores of each kind: " + left);
        }
    }

    @Test
    void imageSimilarityIsTheMeanCosineToTheReferencePictures() {
        try (Scope s = Scope.inference()) {
            Tensor all = clip.imageEmbeds(pictures);
            assertEquals(1.0, Ops.item(all.select(0, 0).norm()), 1e-5, "unit length");
            double[] self = clip.imageSimilarity(pictures.narrow(0, 0, 1), all.narrow(0, 0, 1));
            assertEquals(1.0, self[0], 1e-5, "a picture against itself");
            double[] two = clip.imageSimilarity(pictures, all.narrow(0, 1, 2));
            for (int i = 0; i < 3; i++) {
                double expected = (dot(all, i, all, 1) + dot(all, i, all, 2)) / 2;
                assertEquals(expected, two[i], 1e-5, "picture " + i);
            }
        }
    }

    @Test
    void textSimilarityIsEachPicturesCosineToItsOwnCaption() {
        try (Scope s = Scope.inference()) {
            Tensor images = clip.imageEmbeds(pictures), texts = clip.textEmbeds(captions);
            double[] t = clip.textSimilarity(pictures, captions);
            for (int i = 0; i < 3; i++) assertEquals(dot(images, i, texts, i), t[i], 1e-5, "picture " + i);
            assertNotEquals(t[0], clip.textSimilarity(pictures.narrow(0, 0, 1), List.of(captions.get(1)))[0], "another caption, another score");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> clip.textSimilarity(pictures, captions.subList(0, 2)));
            assertEquals("3 pictures but 2 captions", e.getMessage());
        }
    }

    @Test
    void agreementIsMeasuredOnUnseenPictures() {
        WorldClip.Agreement a = clip.agreement(8, 99);
        assertEquals(8, a.pictures());
        assertTrue(a.topOne() >= 1 / 8.0 - 1e-9 && a.topOne() <= 1, a.toString());  // at least its own caption's duplicates
        assertTrue(Math.abs(a.ownCaption()) <= 1 && Math.abs(a.otherCaption()) <= 1, a.toString());
    }

    @Test
    void aFolderMissingATowerIsRefusedByName() throws IOException {
        Path broken = tmp.resolve("broken");
        Files.createDirectories(broken.resolve("tokenizer"));
        Files.createDirectories(broken.resolve("text_encoder"));
        Files.copy(folder.resolve("text_encoder/model.safetensors"), broken.resolve("text_encoder/model.safetensors"));
        IOException e = assertThrows(IOException.class, () -> WorldClip.load(broken));
        assertTrue(e.getMessage().contains("image_encoder/model.safetensors is missing"), e.getMessage());
        assertTrue(Files.isRegularFile(folder.resolve("recipe.json")), "the towers' recipe goes with them");
    }

    private static double dot(Tensor a, int i, Tensor b, int j) {
        return Ops.item(Ops.sum(Ops.mul(a.select(0, i), b.select(0, j)), 0, false));
    }
}
