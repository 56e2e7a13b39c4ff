package dev.perfusion.world;

import dev.perfusion.perfusion.CaptionCorpus;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The world's base model, and only it, takes the world's captions into its input covariance. */
class WorldCorpusTest {
    /**
     * The world corpus's first 4000 captions (seed 1234, every word taken): a change here changes the bundled
     * model's C^-1, which its shipped concept was trained with (CovarianceCacheTest pins the captions its
     * vocabulary keeps).
     */
    private static final String WORLD_4000_ALL_WORDS = "5cff85c9a22a5b3b195e24ff3ded47b6562ffd747814f2094124a7430014d197";

    @TempDir Path tmp;

    @Test
    void aTrainingCaptionIsTheSampleCaptionWithoutThePicture() {
        WorldGenerator world = new WorldGenerator();
        for (long seed : new long[] {0, 1, 42, 1234567, Long.MAX_VALUE}) {
            assertEquals(world.sample(seed).caption(), WorldGenerator.trainingCaption(seed), "seed " + seed);
        }
    }

    @Test
    void theWorldCorpusMixesTheWorldsCaptionsIntoTheGenericOne() {
        CaptionCorpus world = WorldCorpus.world();
        assertEquals("generic+world", world.name());
        List<String> captions = world.captions(4000, 1234, w -> true);
        assertEquals(WORLD_4000_ALL_WORDS, CaptionCorpus.sha256(captions));
        List<String> generic = CaptionCorpus.generic().captions(4000, 1234, w -> true);
        assertNotEquals(generic, captions);
        assertEquals(generic.get(0), captions.get(0), "the generic captions come first, from the same draws");
    }

    @Test
    void theBundledModelIsAWorldBaseModelAndOthersAreNot() throws IOException {
        assertTrue(WorldCorpus.isWorldBaseModel(Bundled.model()));
        assertEquals("generic+world", WorldCorpus.forModel(Bundled.model()).name());

        Path plain = Files.createDirectories(tmp.resolve("sd15"));
        Files.writeString(plain.resolve("model_index.json"), "{}");
        assertEquals("generic", WorldCorpus.forModel(plain).name(), "a diffusers folder without a world recipe");
        Path other = Files.createDirectories(tmp.resolve("other"));
        Files.writeString(other.resolve("recipe.json"), "{\"what\": \"someone else's recipe\"}");
        assertEquals("generic", WorldCorpus.forModel(other).name());
        Path single = Files.writeString(tmp.resolve("model.safetensors"), "");
        assertEquals("generic", WorldCorpus.forModel(single).name(), "a single file");

        Path copy = Files.createDirectories(tmp.resolve("copy"));
        Files.copy(Bundled.model().resolve("recipe.json"), copy.resolve("recipe.json"));
        assertEquals("generic+world", WorldCorpus.forModel(copy).name(), "a copy or a new pretraining of the world model");

        Path broken = Files.createDirectories(tmp.resolve("broken"));
        Files.writeString(broken.resolve("recipe.json"), "{not json");
        IOException e = assertThrows(IOException.class, () -> WorldCorpus.forModel(broken));
        assertTrue(e.getMessage().contains("recipe.json"), e.getMessage());
    }
}
