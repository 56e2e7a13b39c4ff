package dev.perfusion.perfusion;

import dev.perfusion.io.Safetensors;
import dev.perfusion.io.layout.ModelSource;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.util.Progress;
import dev.perfusion.world.Bundled;
import dev.perfusion.world.BundledWorld;
import dev.perfusion.world.WorldCorpus;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/** C^-1 is a function of the text encoder and the project's corpus alone, and its cache key names them all. */
class CovarianceCacheTest {
    /**
     * The start of the hash of the 4000 captions the bundled model's C^-1 is computed from. It is the corpus the
     * shipped concept {@code my-cat} was trained with where no Debian word list was installed (CI), so that C^-1
     * and the demo's pictures are unchanged there.
     */
    private static final String BUNDLED_CORPUS_4000 = "1956ba9011ff36b4";

    @TempDir static Path tmp;
    static StableDiffusion sd;

    @BeforeAll
    static void load() throws IOException {
        sd = load(Bundled.model());
    }

    private static StableDiffusion load(Path model) throws IOException {
        return StableDiffusion.load(model, ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float, Progress.NONE);
    }

    @Test
    void twoBuildsOfTheCorpusGiveTheSameInverseBitForBit() throws IOException {
        float[] first, second, cached, generic;
        try (Scope s = Scope.inference()) {
            first = Ops.toFloats(CovarianceCache.inverseFor(sd, WorldCorpus.world(), tmp.resolve("a"), 200, Progress.NONE));
            second = Ops.toFloats(CovarianceCache.inverseFor(sd, WorldCorpus.world(), tmp.resolve("b"), 200, Progress.NONE));
            cached = Ops.toFloats(CovarianceCache.inverseFor(sd, WorldCorpus.world(), tmp.resolve("a"), 200, Progress.NONE));
            generic = Ops.toFloats(CovarianceCache.inverseFor(sd, CaptionCorpus.generic(), tmp.resolve("a"), 200, Progress.NONE));
        }
        assertArrayEquals(first, second, "computed twice from scratch");
        assertArrayEquals(first, cached, "read back from the cache");
        assertFalse(java.util.Arrays.equals(first, generic), "the generic corpus leaves out the world's captions");
        try (Stream<Path> files = Files.list(tmp.resolve("a"))) {
            assertEquals(2, files.count(), "one file per corpus");
        }
    }

    @Test
    void theBundledModelKeepsItsCorpus() {
        CovarianceCache.Key key = CovarianceCache.key(sd, WorldCorpus.world(), CovarianceCache.DEFAULT_CAPTIONS);
        assertTrue(key.captionsSha256().startsWith(BUNDLED_CORPUS_4000), key.captionsSha256());
        assertEquals("generic+world", key.corpus());
        assertEquals(CovarianceCache.DEFAULT_CAPTIONS, key.captions());
    }

    @Test
    void theKeyChangesWithTheCorpusTheCountAndTheLayer() {
        CovarianceCache.Key world = CovarianceCache.key(sd, WorldCorpus.world(), 300);
        CovarianceCache.Key generic = CovarianceCache.key(sd, CaptionCorpus.generic(), 300);
        assertEquals(world.textEncoderHash(), generic.textEncoderHash());
        assertNotEquals(world.captionsSha256(), generic.captionsSha256());
        assertNotEquals(world.fileName(), generic.fileName());
        assertNotEquals(world.fileName(), CovarianceCache.key(sd, WorldCorpus.world(), 301).fileName());
        assertEquals(world, CovarianceCache.key(sd, WorldCorpus.world(), 300), "a function of its inputs");
        sd.setClipSkip(1);
        try {
            CovarianceCache.Key skip = CovarianceCache.key(sd, WorldCorpus.world(), 300);
            assertEquals(1, skip.clipSkip());
            assertNotEquals(world.fileName(), skip.fileName());
        } finally {
            sd.setClipSkip(0);
        }
    }

    @Test
    void theKeyChangesWithTheTextEncoder() throws IOException {
        Path copy = BundledWorld.copyOfModel(tmp.resolve("changed-encoder"));
        Path weights = copy.resolve("text_encoder/model.safetensors");
        Safetensors original = Safetensors.open(weights);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        try (Scope s = Scope.inference()) {
            for (String name : new TreeSet<>(original.keys())) tensors.put(name, original.get(name));
            String first = tensors.keySet().iterator().next();
            tensors.put(first, Ops.add(tensors.get(first), 0.5));
            Files.delete(weights);
            Safetensors.write(weights, tensors, original.metadata(), Safetensors.StoredType.F32);
        }
        StableDiffusion changed = load(copy);
        CovarianceCache.Key before = CovarianceCache.key(sd, WorldCorpus.world(), 300);
        CovarianceCache.Key after = CovarianceCache.key(changed, WorldCorpus.world(), 300);
        assertNotEquals(before.textEncoderHash(), after.textEncoderHash());
        assertEquals(before.captionsSha256(), after.captionsSha256(), "same vocabulary, same captions");
        assertNotEquals(before.fileName(), after.fileName());
    }

    @Test
    void theFileNameNamesEveryPartOfTheKey() {
        CovarianceCache.Key k = new CovarianceCache.Key("sha256-f32:abc", 0, "generic", 300, "0123456789abcdef0123", 49407, 77, 1e-3, 1e-6);
        List<CovarianceCache.Key> changed = List.of(
                new CovarianceCache.Key("sha256-f32:abd", 0, "generic", 300, "0123456789abcdef0123", 49407, 77, 1e-3, 1e-6),
                new CovarianceCache.Key("sha256-f32:abc", 2, "generic", 300, "0123456789abcdef0123", 49407, 77, 1e-3, 1e-6),
                new CovarianceCache.Key("sha256-f32:abc", 0, "generic+world", 300, "0123456789abcdef0123", 49407, 77, 1e-3, 1e-6),
                new CovarianceCache.Key("sha256-f32:abc", 0, "generic", 30, "0123456789abcdef0123", 49407, 77, 1e-3, 1e-6),
                new CovarianceCache.Key("sha256-f32:abc", 0, "generic", 300, "1123456789abcdef0123", 49407, 77, 1e-3, 1e-6),
                new CovarianceCache.Key("sha256-f32:abc", 0, "generic", 300, "0123456789abcdef0123", 49407, 77, 1e-2, 1e-6),
                new CovarianceCache.Key("sha256-f32:abc", 0, "generic", 300, "0123456789abcdef0123", 49407, 77, 1e-3, 1e-7),
                new CovarianceCache.Key("sha256-f32:abc", 0, "generic", 300, "0123456789abcdef0123", 0, 77, 1e-3, 1e-6),
                new CovarianceCache.Key("sha256-f32:abc", 0, "generic", 300, "0123456789abcdef0123", 49407, 32, 1e-3, 1e-6));
        for (CovarianceCache.Key c : changed) assertNotEquals(k.fileName(), c.fileName(), c.toString());
        assertTrue(k.fileName().matches("[A-Za-z0-9._-]+\\.safetensors"), k.fileName());
    }

    @Test
    void theCacheFileRecordsItsKey() throws IOException {
        Path dir = tmp.resolve("metadata");
        try (Scope s = Scope.inference()) {
            CovarianceCache.inverseFor(sd, CaptionCorpus.generic(), dir, 64, Progress.NONE);
        }
        CovarianceCache.Key key = CovarianceCache.key(sd, CaptionCorpus.generic(), 64);
        Map<String, String> meta = Safetensors.open(dir.resolve(key.fileName())).metadata();
        assertEquals(key.textEncoderHash(), meta.get(InputCovariance.ENCODER_KEY));
        assertEquals("64", meta.get(InputCovariance.CAPTIONS_KEY));
        assertEquals("generic", meta.get("corpus"));
        assertEquals(key.captionsSha256(), meta.get("corpus_captions_sha256"));
        assertEquals("0", meta.get("clip_skip"));
        assertEquals(Double.toString(InputCovariance.RIDGE), meta.get("ridge"));
    }

    @Test
    void aCacheThatCannotBeWrittenOrReadCostsTheComputationNotTheRun() throws IOException {
        List<String> messages = new java.util.ArrayList<>();
        Progress said = new Progress() {
            @Override public void update(String task, long done, long total, String detail) {}
            @Override public void message(String text) { messages.add(text); }
        };
        Path file = tmp.resolve("not-a-folder");
        Files.writeString(file, "a file where the cache folder should be");
        float[] fresh, uncached, mended, reread;
        try (Scope s = Scope.inference()) {
            fresh = Ops.toFloats(CovarianceCache.inverseFor(sd, CaptionCorpus.generic(), tmp.resolve("fresh"), 64, Progress.NONE));
            uncached = Ops.toFloats(CovarianceCache.inverseFor(sd, CaptionCorpus.generic(), file.resolve("cache"), 64, said));
        }
        assertArrayEquals(fresh, uncached, "computed all the same");
        assertTrue(messages.stream().anyMatch(m -> m.startsWith("C^-1 is not cached (") && m.contains("PERFUSION_CACHE")), messages.toString());
        // a damaged cache file is computed again and replaced
        Path dir = tmp.resolve("damaged");
        Path cached = dir.resolve(CovarianceCache.key(sd, CaptionCorpus.generic(), 64).fileName());
        Files.createDirectories(dir);
        Files.write(cached, java.util.Arrays.copyOf(Files.readAllBytes(tmp.resolve("fresh").resolve(cached.getFileName())), 100));
        messages.clear();
        try (Scope s = Scope.inference()) {
            mended = Ops.toFloats(CovarianceCache.inverseFor(sd, CaptionCorpus.generic(), dir, 64, said));
            reread = Ops.toFloats(CovarianceCache.inverseFor(sd, CaptionCorpus.generic(), dir, 64, Progress.NONE));
        }
        assertArrayEquals(fresh, mended);
        assertArrayEquals(fresh, reread, "the replaced file reads back");
        assertTrue(messages.stream().anyMatch(m -> m.startsWith("the cached C^-1 " + cached + " cannot be read (")), messages.toString());
    }
}
