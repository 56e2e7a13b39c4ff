package dev.perfusion.perfusion;

import dev.perfusion.training.TrainingImages;
import dev.perfusion.training.TrainingSettings;
import dev.perfusion.training.ConceptTrainer;
import dev.perfusion.Fixtures;
import dev.perfusion.io.Png;
import dev.perfusion.io.layout.ModelSource;
import dev.perfusion.pipeline.SeededNoise;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.pipeline.TextToImage;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.unet.Attention;
import dev.perfusion.util.Progress;
import dev.perfusion.world.HeldOut;
import dev.perfusion.world.Sample;
import dev.perfusion.world.WorldGenerator;
import dev.perfusion.perfusion.CaptionCorpus;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** Train a concept on the tiny fixture model, save it, load it back and generate with it. */
class PerfusionEndToEndTest {
    @TempDir static Path tmp;
    static StableDiffusion sd;
    static Tensor cInv;
    static Path images;

    @BeforeEach
    void requireFixtures() {
        Fixtures.shared();
    }

    @BeforeAll
    static void setUp() throws Exception {
        if (!Fixtures.present()) return; // each test then skips, saying so (requireFixtures)
        sd = StableDiffusion.load(Fixtures.diffusers(), ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float, Progress.NONE);
        cInv = CovarianceCache.inverseFor(sd, CaptionCorpus.generic(), tmp.resolve("cache"), 300, Progress.NONE);
        images = Files.createDirectories(tmp.resolve("images"));
        List<Sample> views = new WorldGenerator(128).views(HeldOut.instances().get(0), 4, 7);
        for (int i = 0; i < views.size(); i++) Png.write(images.resolve("view" + i + ".png"), views.get(i).image(), Map.of());
    }

    static TrainingSettings quick() {
        return TrainingSettings.defaults().toBuilder().steps(8).batch(2, 1).images(TrainingImages.Fit.CROP, 2, 0).schedule(0, 8).build();
    }

    @Test
    void trainingLowersTheLossAndTheConceptGenerates() throws Exception {
        Path out = tmp.resolve("my-teddy.safetensors");
        ConceptTrainer trainer = new ConceptTrainer(sd, cInv, "my-teddy", "teddy", quick());
        ConceptTrainer.Result r = trainer.train(images, null, out, false, tmp.resolve("samples"), Progress.NONE);
        assertEquals(8, r.losses().size());
        assertTrue(r.probeAfter() < r.probeBefore(), "fixed-batch loss " + r.probeBefore() + " -> " + r.probeAfter());
        assertTrue(Files.isRegularFile(tmp.resolve("samples/step-00008.png")), "sample image written");
        assertFalse(Files.exists(out.resolveSibling(out.getFileName() + ".ckpt")), "checkpoint removed at the end");

        ConceptFile loaded = ConceptFile.load(out);
        assertEquals("my-teddy", loaded.word());
        assertEquals(6, loaded.layerCount());
        assertEquals(0.0, Ops.maxAbsDiff(loaded.embedding(), r.concept().embedding()));
        loaded.checkFits(out, sd.unetHash(), sd.textEncoderHash(), 0, 32, AppliedConcepts.layerDims(sd), false);

        // the model is untouched after training; with the concept installed, its word changes the image
        try (Scope s = Scope.inference()) {
            TextToImage.Request request = new TextToImage.Request("a photo of a my-teddy on the beach", "", 5, 4, "ddim", 64, 64);
            Tensor noise = new SeededNoise(3).randn(TextToImage.latentShape(sd, 64, 64));
            Tensor plain = TextToImage.denoise(sd, request, TextToImage.conditioning(sd, request, w -> {}), noise, new SeededNoise(0), Progress.NONE);
            Tensor edited;
            try (AppliedConcepts applied = AppliedConcepts.apply(sd, cInv, List.of(new AppliedConcepts.Use(loaded, 0.7, 0.15)),
                    ConceptGate.Orthogonalization.EXACT, false)) {
                edited = TextToImage.denoise(sd, request, TextToImage.conditioning(applied, request, w -> {}), noise, new SeededNoise(0), Progress.NONE);
            }
            Tensor again = TextToImage.denoise(sd, request, TextToImage.conditioning(sd, request, w -> {}), noise, new SeededNoise(0), Progress.NONE);
            assertTrue(Ops.maxAbsDiff(plain, edited) > 1e-4, "the concept changes the result");
            assertEquals(0.0, Ops.maxAbsDiff(plain, again), "closing restores the model");
        }
    }

    @Test
    void anInterruptedRunResumesToTheSameConcept() throws Exception {
        TrainingSettings settings = quick().toBuilder().steps(4).schedule(2, 0).build();
        Path straight = tmp.resolve("straight.safetensors"), resumed = tmp.resolve("resumed.safetensors");
        new ConceptTrainer(sd, cInv, "my-dog", "dog", settings).train(images, null, straight, false, null, Progress.NONE);
        Progress interrupt = (task, done, total, detail) -> {
            if (done == 3) throw new IllegalStateException("interrupted");
        };
        assertThrows(IllegalStateException.class,
                () -> new ConceptTrainer(sd, cInv, "my-dog", "dog", settings).train(images, null, resumed, false, null, interrupt));
        assertFalse(Files.exists(resumed), "no concept file from an interrupted run");
        assertTrue(Files.exists(resumed.resolveSibling("resumed.safetensors.ckpt")), "the step-2 checkpoint is kept");
        new ConceptTrainer(sd, cInv, "my-dog", "dog", settings).train(images, null, resumed, true, null, Progress.NONE);
        ConceptFile a = ConceptFile.load(straight), b = ConceptFile.load(resumed);
        assertTrue(Ops.maxAbsDiff(a.embedding(), b.embedding()) < 1e-6);
        assertTrue(Ops.maxAbsDiff(a.iStar(), b.iStar()) < 1e-6);
        for (int l = 0; l < a.layerCount(); l++) assertTrue(Ops.maxAbsDiff(a.edit().values().get(l), b.edit().values().get(l)) < 1e-6);
        var missing = assertThrows(java.io.IOException.class, () -> new ConceptTrainer(sd, cInv, "my-dog", "dog", settings)
                .train(images, null, tmp.resolve("never.safetensors"), true, null, Progress.NONE));
        assertTrue(missing.getMessage().contains("no training checkpoint"));
    }

    @Test
    void zeroShotAttentionMaskIsASoftMapOfTheSupercategory() throws Exception {
        try (Scope s = Scope.inference()) {
            Tensor x0 = sd.vae.latentsFromImage(Png.toTensor(javax.imageio.ImageIO.read(images.resolve("view0.png").toFile())));
            Tensor mask = AttentionMask.of(sd, x0, "teddy", 1);
            long[] shape = Ops.shape(x0);
            assertArrayEquals(new long[] {1, 1, shape[2], shape[3]}, Ops.shape(mask));
            assertEquals(1.0, Ops.item(mask.max()), 1e-6);
            assertTrue(Ops.item(mask.min()) >= 0 && Ops.item(mask.min()) < 0.99, "not constant");
            // the observed maps are attention probabilities: each query's row sums to 1
            double[] rowSum = new double[1];
            Attention.observeCrossAttention(p -> rowSum[0] = Ops.item(p.sum(new long[] {-1}, false, new org.bytedeco.pytorch.ScalarTypeOptional()).mean()));
            Tensor text = sd.encodePrompts(List.of("a teddy"), w -> {});
            Tensor observed = sd.unet.forward(x0, Ops.fromFloats(new float[] {300f}, 1), text);
            Attention.observeCrossAttention(null);
            assertEquals(1.0, rowSum[0], 1e-5);
            assertTrue(Ops.maxAbsDiff(observed, sd.unet.forward(x0, Ops.fromFloats(new float[] {300f}, 1), text)) < 1e-4,
                    "observing does not change the result");
        }
        ConceptTrainer.Result r = new ConceptTrainer(sd, cInv, "my-owl", "bird", quick().toBuilder().steps(2).schedule(0, 0).attentionMasks(true).build()).train(images, null, tmp.resolve("owl.safetensors"), false, null, Progress.NONE);
        assertEquals("zero-shot cross-attention", r.concept().settings().get("mask"));
    }

    @Test
    void iStarTrackedAfterOtherObjectsTooStartsFromBothContextsAndIsRecorded() throws Exception {
        List<String> contexts = ConceptTrainer.afterObjectTemplatesFor(sd.tokenizer, "dog");
        assertEquals(ConceptTrainer.AFTER_OBJECT_TEMPLATES.size() * 15, contexts.size(), "CLIP's vocabulary holds every other object whole");
        for (String c : contexts) {
            assertEquals(1, c.split("\\{}", -1).length - 1, c);
            assertFalse(c.startsWith("a dog "), "the supercategory is not its own other object: " + c);
            assertTrue(c.indexOf("{}") > c.indexOf(' ', 2), "another object comes first: " + c);
        }
        TrainingSettings plain = quick().toBuilder().steps(1).schedule(0, 0).build();
        ConceptFile templatesOnly = new ConceptTrainer(sd, cInv, "my-pup", "dog", plain)
                .train(images, null, tmp.resolve("pup.safetensors"), false, null, Progress.NONE).concept();
        ConceptFile afterObjects = new ConceptTrainer(sd, cInv, "my-pup", "dog", plain.toBuilder().iStarAfterObjects(true).build())
                .train(images, null, tmp.resolve("pup-pairs.safetensors"), false, null, Progress.NONE).concept();
        assertNull(templatesOnly.settings().get("i*"), "a file without the option records what it always did");
        assertEquals("the training prompts and after another object", afterObjects.settings().get("i*"));
        double apart = Ops.maxAbsDiff(templatesOnly.iStar(), afterObjects.iStar());
        assertTrue(apart > 1e-3, "i* moves towards the word's encodings after other objects: " + apart);
        // the world model's vocabulary holds its eight categories of the sixteen other objects
        List<String> world = ConceptTrainer.afterObjectTemplatesFor(
                dev.perfusion.text.ClipTokenizer.load(dev.perfusion.world.Bundled.model().resolve("tokenizer")), "cat");
        assertEquals(ConceptTrainer.AFTER_OBJECT_TEMPLATES.size() * 7, world.size(), world.toString());
        assertTrue(world.contains("a teddy next to a {}") && world.stream().noneMatch(c -> c.contains("horse")), world.toString());
    }

    @Test
    void aConceptIsRefusedByAnotherModel() throws Exception {
        Path out = tmp.resolve("other.safetensors");
        new ConceptTrainer(sd, cInv, "my-cat", "cat", quick().toBuilder().steps(1).schedule(0, 0).build()).train(images, null, out, false, null, Progress.NONE);
        ConceptFile c = ConceptFile.load(out);
        var otherModel = assertThrows(IllegalArgumentException.class,
                () -> c.checkFits(out, "sha256-f32-sampled4096:another", sd.textEncoderHash(), 0, 32, AppliedConcepts.layerDims(sd), false));
        assertTrue(otherModel.getMessage().contains("another base model"), otherModel.getMessage());
        assertFalse(otherModel.getMessage().contains("--"), "the library names no command-line flag: " + otherModel.getMessage());
        var otherEncoder = assertThrows(IllegalArgumentException.class,
                () -> c.checkFits(out, sd.unetHash(), "sha256-f32-sampled4096:x", 0, 32, AppliedConcepts.layerDims(sd), false));
        assertTrue(otherEncoder.getMessage().contains("another text encoder"));
        // trained on the last layer's encodings: its i* and targets mean nothing to a run that skips a layer
        assertEquals("0", c.settings().get(ConceptFile.CLIP_SKIP_SETTING));
        var otherLayer = assertThrows(IllegalArgumentException.class,
                () -> c.checkFits(out, sd.unetHash(), sd.textEncoderHash(), 1, 32, AppliedConcepts.layerDims(sd), false));
        assertEquals(out + ": concept 'my-cat' was trained on the text encoder with clip skip 0, this run uses 1; use it with clip skip 0",
                otherLayer.getMessage());
        c.checkFits(out, "sha256-f32-sampled4096:another", sd.textEncoderHash(), 0, 32, AppliedConcepts.layerDims(sd), true);
        c.checkFits(out, sd.unetHash(), sd.textEncoderHash(), 1, 32, AppliedConcepts.layerDims(sd), true);
        var shapes = assertThrows(IllegalArgumentException.class,
                () -> c.checkFits(out, sd.unetHash(), sd.textEncoderHash(), 0, 768, new long[] {320, 320}, true));
        assertTrue(shapes.getMessage().contains("768"), "shape mismatches are never forced");
    }

    @Test
    void badTrainingInputIsAClearError() throws Exception {
        var multi = assertThrows(IllegalArgumentException.class, () -> new ConceptTrainer(sd, cInv, "my-x", "teddybear123", quick()));
        assertTrue(multi.getMessage().contains("not a single token") && multi.getMessage().contains("teddy"), multi.getMessage());
        var collision = assertThrows(IllegalArgumentException.class, () -> new ConceptTrainer(sd, cInv, "dog", "teddy", quick()));
        assertTrue(collision.getMessage().contains("already a token"), collision.getMessage());
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        var none = assertThrows(java.io.IOException.class,
                () -> new ConceptTrainer(sd, cInv, "my-y", "teddy", quick()).train(empty, null, tmp.resolve("y.safetensors"), false, null, Progress.NONE));
        assertTrue(none.getMessage().contains("no images"));
        Path junk = Files.createDirectories(tmp.resolve("junk"));
        Files.writeString(junk.resolve("notes.txt"), "not an image");
        var notImage = assertThrows(java.io.IOException.class,
                () -> new ConceptTrainer(sd, cInv, "my-z", "teddy", quick()).train(junk, null, tmp.resolve("z.safetensors"), false, null, Progress.NONE));
        assertTrue(notImage.getMessage().contains("notes.txt"), notImage.getMessage());
        assertFalse(Files.exists(tmp.resolve("z.safetensors")), "nothing half written");
        Path corrupt = tmp.resolve("corrupt.safetensors");
        Files.write(corrupt, new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
        assertThrows(java.io.IOException.class, () -> ConceptFile.load(corrupt));
    }
}
