package dev.perfusion.eval;

import dev.perfusion.io.Png;
import dev.perfusion.io.layout.ModelSource;
import dev.perfusion.training.ConceptMethods;
import dev.perfusion.pipeline.SeededNoise;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.pipeline.TextToImage;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.util.Progress;
import dev.perfusion.world.Bundled;
import dev.perfusion.world.HeldOut;
import dev.perfusion.world.Category;
import dev.perfusion.world.ColorWord;
import dev.perfusion.world.Instance;
import dev.perfusion.world.Sample;
import dev.perfusion.world.Scene;
import dev.perfusion.world.SceneSpec;
import dev.perfusion.world.Size;
import dev.perfusion.world.WorldCorpus;
import dev.perfusion.world.WorldGenerator;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The shipped base model: loads through the ordinary loader, draws prompts, and the evaluation runs on it. */
class BundledModelTest {
    static StableDiffusion sd;

    @BeforeAll
    static void load() throws Exception {
        sd = StableDiffusion.load(Bundled.model(), ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float, Progress.NONE);
    }

    @Test
    void shippedFolderIsSmallAndRecordsItsRecipe() throws Exception {
        long bytes;
        try (var files = Files.walk(Bundled.model())) {
            bytes = files.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
        }
        assertTrue(bytes <= 40L * 1024 * 1024, "the bundled model must fit 40 MB: " + bytes);
        String recipe = Files.readString(Bundled.model().resolve("recipe.json"));
        assertTrue(recipe.contains("\"diffusionSteps\"") && recipe.contains("final_loss_smoothed"), recipe);
    }

    @Test
    void drawsAPromptAsAPicture() {
        try (Scope s = Scope.inference()) {
            TextToImage.Request r = new TextToImage.Request("a red car on the beach", "", 5, 10, "ddim", 64, 64);
            Tensor latents = TextToImage.denoise(sd, r, TextToImage.conditioning(sd, r, w -> {}),
                    new SeededNoise(1).randn(TextToImage.latentShape(sd, 64, 64)), new SeededNoise(2), Progress.NONE);
            BufferedImage img = Png.toImages(TextToImage.decode(sd, latents)).get(0);
            assertEquals(64, img.getWidth());
            Tensor x = AttributeClassifier.picturesOf(List.of(img));
            assertTrue(Ops.item(x.std()) > 0.1, "a picture, not a flat field");
        }
    }

    @Test
    void pairPlacementReadsEachHalfAndTellsSwappedSides() throws Exception {
        AttributeClassifier judge = AttributeClassifier.load(Bundled.classifier());
        WorldGenerator world = new WorldGenerator();
        java.util.SplittableRandom rng = new java.util.SplittableRandom(5);
        List<PairPlacement.Pair> pairs = new java.util.ArrayList<>();
        List<Sample> asPrompted = new java.util.ArrayList<>(), mirrored = new java.util.ArrayList<>();
        Category[][] which = {{Category.TEDDY, Category.CAR}, {Category.DOG, Category.HOUSE}, {Category.MUG, Category.TREE}, {Category.BIRD, Category.CAT}};
        for (Category[] w : which) {
            pairs.add(new PairPlacement.Pair(w[0], w[1], Scene.values()[0]));
            Instance a = WorldGenerator.trainingInstance(w[0], rng), b = WorldGenerator.trainingInstance(w[1], rng);
            asPrompted.add(world.render(SceneSpec.pair(a, b, Scene.values()[0], Size.SMALL), 1));
            mirrored.add(world.render(SceneSpec.pair(b, a, Scene.values()[0], Size.SMALL), 1));
        }
        try (Scope s = Scope.inference()) {
            assertArrayEquals(new int[] {4, 0}, PairPlacement.judge(judge, AttributeClassifier.pictures(asPrompted), pairs), "each on its side");
            assertArrayEquals(new int[] {0, 4}, PairPlacement.judge(judge, AttributeClassifier.pictures(mirrored), pairs), "the sides swapped");
        }
        // the same with colours: each object in its own colour, drawn as asked, then mirrored
        ColorWord[][] colours = {{ColorWord.BROWN, ColorWord.BLUE}, {ColorWord.BLACK, ColorWord.RED}, {ColorWord.RED, ColorWord.GREEN}, {ColorWord.YELLOW, ColorWord.BROWN}};
        List<PairPlacement.Pair> coloured = new java.util.ArrayList<>();
        List<Sample> colouredAsPrompted = new java.util.ArrayList<>(), colouredMirrored = new java.util.ArrayList<>();
        for (int i = 0; i < which.length; i++) {
            Category[] w = which[i];
            ColorWord c = w[0].colors().contains(colours[i][0]) ? colours[i][0] : w[0].colors().get(0);
            ColorWord d = w[1].colors().stream().filter(x -> !x.similar(c)).findFirst().orElseThrow();
            coloured.add(new PairPlacement.Pair(w[0], w[1], Scene.values()[0], c, d));
            Instance a = WorldGenerator.trainingInstance(w[0], c, rng), b = WorldGenerator.trainingInstance(w[1], d, rng);
            colouredAsPrompted.add(world.render(SceneSpec.pair(a, b, Scene.values()[0], Size.SMALL), 1));
            colouredMirrored.add(world.render(SceneSpec.pair(b, a, Scene.values()[0], Size.SMALL), 1));
        }
        try (Scope s = Scope.inference()) {
            int[] asAsked = PairPlacement.judgeColours(judge, AttributeClassifier.pictures(colouredAsPrompted), coloured);
            int[] mirroredRead = PairPlacement.judgeColours(judge, AttributeClassifier.pictures(colouredMirrored), coloured);
            assertTrue(asAsked[0] >= 3 && asAsked[1] <= 1, "each colour on its object: " + Arrays.toString(asAsked));
            // mirrored, each object keeps its colour: the sides changed, the binding did not
            assertTrue(mirroredRead[0] >= 3 && mirroredRead[1] <= 1, "each colour on its object, on the other sides: " + Arrays.toString(mirroredRead));
        }
        PairPlacement.Result r = PairPlacement.measure(sd, judge, 8, 3, 5.0, 0, 3, Progress.NONE);
        assertEquals(8, r.pictures());
        assertTrue(r.onTheirSides() + r.swapped() <= 1 && r.renderedOnTheirSides() >= 0.75, r.toString());
        PairPlacement.Colours c = r.colours();
        assertTrue(c.onTheirObjects() + c.traded() + c.oneOnBoth() <= 1 && c.renderedOnTheirObjects() >= 0.5, r.toString());
        assertTrue(r.summary().startsWith("two objects on their prompted sides (\"a A on the left and a B on the right ...\", 8 pictures): "), r.summary());
        assertTrue(r.summary().contains("\neach colour on its own object (\"a C A on the left and a D B on the right ...\", 8 pictures, either side): "), r.summary());
    }

    @Test
    void promptFollowingReportCoversEveryAttribute() throws Exception {
        PromptFollowing.Report r = PromptFollowing.measure(sd, AttributeClassifier.load(Bundled.classifier()), ObjectCounter.load(Bundled.objectCounter()), 8, 5, 5.0, 0, 3, Progress.NONE);
        assertEquals(8, r.samples());
        for (AttributeClassifier.Attribute a : AttributeClassifier.Attribute.values()) {
            assertTrue(r.generated().get(a) >= 0 && r.generated().get(a) <= 1, a.label());
            assertTrue(r.rendered().get(a) > 0.5, "the judge reads the renders of the same scenes: " + a.label() + " " + r.rendered());
        }
        assertTrue(r.markdown().contains("| category |"));
        int confused = java.util.Arrays.stream(r.categoryConfusion()).flatMapToInt(java.util.Arrays::stream).sum();
        assertEquals(8, confused, "every sample is counted once in the category confusion");
        int diagonal = 0;
        for (int c = 0; c < r.categoryConfusion().length; c++) diagonal += r.categoryConfusion()[c][c];
        assertEquals(r.generated().get(AttributeClassifier.Attribute.CATEGORY), diagonal / 8.0, 1e-9, "its diagonal is the category rate");
        assertTrue(r.markdown().contains("| asked |"), r.markdown());
        assertEquals(0, r.renderedTwice(), 1e-9, "the counter reads one object in each render of a one-object scene");
        assertTrue(r.drawnTwice() >= 0 && r.drawnTwice() <= 1 && r.markdown().contains("One object drawn twice"), r.markdown());
    }

    @Test
    void quickEvaluationScoresEveryMethod(@TempDir Path tmp) throws Exception {
        System.setProperty("perfusion.cache", tmp.resolve("cache").toString());
        Tensor cInv = dev.perfusion.perfusion.CovarianceCache.inverseFor(sd, WorldCorpus.world(), tmp.resolve("cache"), 300, Progress.NONE);
        MethodEvaluation.Protocol p = new MethodEvaluation.Protocol(2, 2, 1, 2, List.of(0.6, 0.8), 2, 5.0,
                ConceptMethods.ALL, true, MethodEvaluation.Mask.NONE);
        MethodEvaluation.Report r = new MethodEvaluation(sd, cInv, WorldJudges.bundled(), p, tmp.resolve("work"), Progress.NONE)
                .run(HeldOut.instances());
        // per instance: base model, the world's own pictures and the same through the VAE, perfusion local+global x 2 betas,
        // trained keys x 2 betas, ungated, TI, KV
        assertEquals(2 * 2 * (1 + 2 + 4 + 2 + 1 + 1 + 1), r.scores().size());
        MethodEvaluation.Summary rendered = r.summaries().stream().filter(s -> s.method().equals(MethodEvaluation.RENDERER)).findFirst().orElseThrow();
        assertEquals(4, rendered.pictures());
        assertTrue(rendered.identification() >= 0.75 && rendered.fidelity() >= 0.5,
                "the instance encoder knows the world's own pictures of the instance: " + rendered);
        assertTrue(rendered.details() >= 0.75, "the instance encoder tells the world's own pictures from their look-alikes without a detail: " + rendered);
        MethodEvaluation.Summary throughVae = summary(r, MethodEvaluation.THROUGH_VAE), base = summary(r, "base model");
        assertEquals(rendered.pictures(), throughVae.pictures(), "the same pictures, through the VAE");
        assertNotEquals(rendered.fidelity(), throughVae.fidelity(), "the VAE's reconstructions are not the pictures themselves");
        assertTrue(throughVae.fidelity() > base.fidelity(),
                "the VAE's reconstruction of the instance resembles it more than the base model's supercategory: " + throughVae + " vs " + base);
        for (MethodEvaluation.Score s : r.scores()) {
            assertTrue(s.fidelity() >= -1.0001 && s.fidelity() <= 1.0001, s.toString());
            assertTrue(s.alignment() >= 0 && s.alignment() <= 1, s.toString());
            assertTrue(s.clipImage() >= -1.0001 && s.clipImage() <= 1.0001 && s.clipText() >= -1.0001 && s.clipText() <= 1.0001, s.toString());
            assertTrue(s.details() == 0 || s.details() == 1, "every held-out instance has a detail to tell: " + s);
        }
        for (MethodEvaluation.Summary s : r.summaries()) {
            long identified = r.scores().stream().filter(x -> x.method().equals(s.method()) && x.variant().equals(s.variant())
                    && Double.compare(x.beta(), s.beta()) == 0 && x.identified()).count();
            assertEquals(identified / (double) s.pictures(), s.identification(), 1e-12, "the fraction of its pictures identified: " + s);
        }
        for (MethodEvaluation.Combination c : r.combinations()) {
            assertTrue(c.bothIdentified() >= 0 && c.bothSwapped() >= 0 && c.bothIdentified() + c.bothSwapped() <= 1, c.toString());
            MethodEvaluation.Failures f = c.failures();
            assertEquals(1.0, f.identified() + f.drawnNotItself() + f.notDrawn(), 1e-12, "each concept counted once: " + c);
            assertTrue(f.identified() >= c.bothIdentified() + c.bothSwapped() - 1e-12, "a picture with both picked counts both concepts picked: " + c);
            assertTrue(f.oneOnBoth() + c.bothIdentified() + c.bothSwapped() <= 1 + 1e-12, "one instance twice is neither pair: " + c);
            assertEquals(f.identified(), (f.firstPicked() + f.secondPicked()) / 2, 1e-12, "each concept is the first- or the second-named: " + c);
            assertTrue(f.firstOnBoth() <= f.oneOnBoth() + 1e-12 && f.firstPicked() >= f.firstOnBoth() - 1e-12, c.toString());
            assertEquals(f.identified(), (f.leftPicked() + f.rightPicked()) / 2, 1e-12, "each concept is prompted on the left or the right: " + c);
        }
        assertTrue(r.summaries().stream().anyMatch(s -> s.method().equals("kv-finetune") && s.fileBytes() > 10 * r.summaries().stream()
                .filter(x -> x.method().equals("perfusion")).findFirst().orElseThrow().fileBytes()), "K/V fine-tuning stores far more than a concept");
        assertEquals(List.of("exact", "approximate", "exact, global lock", "approximate, global lock", MethodEvaluation.BASE_PAIRS,
                MethodEvaluation.RENDERER, MethodEvaluation.THROUGH_VAE), r.combinations().stream().map(MethodEvaluation.Combination::mode).toList());
        assertTrue(r.pairPictures().stream().filter(x -> x.combination().equals(MethodEvaluation.BASE_PAIRS)).allMatch(x -> !x.prompt().contains("my-")),
                "the base model draws the supercategory words");
        for (MethodEvaluation.Combination c : r.combinations()) {
            List<MethodEvaluation.PairPicture> its = r.pairPictures().stream().filter(x -> x.combination().equals(c.mode())).toList();
            assertEquals(c.pictures(), its.size(), "one row per picture: " + c.mode());
            long picked = its.stream().mapToLong(x -> (List.of(x.pickedLeft(), x.pickedRight()).contains(x.left()) ? 1 : 0)
                    + (List.of(x.pickedLeft(), x.pickedRight()).contains(x.right()) ? 1 : 0)).sum();
            assertEquals(c.failures().identified(), picked / (2.0 * its.size()), 1e-12, "the pictures add up to the row: " + c.mode());
            long both = its.stream().filter(x -> x.pickedLeft().equals(x.left()) && x.pickedRight().equals(x.right())).count();
            assertEquals(c.bothIdentified(), both / (double) its.size(), 1e-12, c.mode());
        }
        MethodEvaluation.Combination renderedPairs = r.combinations().get(5);
        assertEquals(r.combinations().get(0).pictures(), renderedPairs.pictures(), "the same pairs and scenes, rendered");
        assertTrue(renderedPairs.failures().identified() >= 0.5, "the judge knows the world's own pairs: " + renderedPairs);
        MethodEvaluation.write(r, p, tmp.resolve("report"), "bundled");
        for (String f : List.of("scores.csv", "report.md", "tradeoff.png")) assertTrue(Files.size(tmp.resolve("report").resolve(f)) > 100, f);
        assertTrue(Files.readString(tmp.resolve("report/report.md")).contains("| both identified | both, sides swapped |"), "the pair table");
        assertTrue(Files.readString(tmp.resolve("report/report.md")).contains("| picked on either half | the first-named / the second-named | prompted on the left / on the right | drawn as another instance | not drawn |"),
                "where each concept went");
        assertTrue(Files.readString(tmp.resolve("report/report.md")).contains("Each instance, picked on either half"), "the pairs by instance");
        List<String> pairs = Files.readAllLines(tmp.resolve("report/pairs.csv"));
        assertEquals(r.pairPictures().size() + 1, pairs.size());
        assertTrue(pairs.get(1).startsWith("\"exact\",\"a my-"), pairs.get(1));
        List<String> csv = Files.readAllLines(tmp.resolve("report/scores.csv"));
        assertEquals(r.scores().size() + 1, csv.size());
        assertTrue(csv.get(0).endsWith(",leakage,identified,clip_image,clip_text,details,twice"), csv.get(0));
        assertEquals(14, csv.get(1).split(",(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)", -1).length, "every column filled or empty: " + csv.get(1));
        assertTrue(Files.readString(tmp.resolve("report/report.md")).contains("| identified | details | drawn twice | CLIP-I | CLIP-T |"));
        for (MethodEvaluation.Score s : r.scores()) {
            boolean twoObjects = s.prompt().contains(" and ") || s.prompt().contains(" next to ");
            assertTrue(twoObjects ? Double.isNaN(s.twice()) : s.twice() == 0 || s.twice() == 1, "counted where the prompt names one object: " + s);
        }
        assertEquals(0, summary(r, MethodEvaluation.RENDERER).drawnTwice(), 1e-12, "the world's own one-object pictures show one object");
    }

    /** The shipped model as a model trained on 128x128 pictures: its UNet is convolutional, so only its config changes. */
    private static StableDiffusion atPictureSize128(Path tmp) throws Exception {
        Path model = dev.perfusion.world.BundledWorld.copyOfModel(tmp.resolve("model-128"));
        Path unetConfig = model.resolve("unet/config.json");
        Files.writeString(unetConfig, Files.readString(unetConfig).replaceFirst("\"sample_size\"\\s*:\\s*16", "\"sample_size\" : 32"));
        return StableDiffusion.load(model, ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float, Progress.NONE);
    }

    /** Prompt following draws at the model's own size (it drew 64x64 pictures from a 128x128 model, which missed most prompts). */
    @Test
    void promptFollowingDrawsAtTheModelsOwnSize(@TempDir Path tmp) throws Exception {
        List<BufferedImage> drawn = PromptFollowing.sample(atPictureSize128(tmp), List.of("a red car on the beach"), 2, 5.0, 0, 1, "sampling", Progress.NONE);
        assertEquals(1, drawn.size());
        assertEquals(128, drawn.get(0).getWidth());
        assertEquals(128, drawn.get(0).getHeight());
        assertEquals(64, PromptFollowing.sample(sd, List.of("a red car on the beach"), 2, 5.0, 0, 1, "sampling", Progress.NONE).get(0).getWidth());
    }

    /**
     * On a model trained on larger pictures, the concept learns from pictures at that size and the ceilings are the world's pictures at that size;
     * the judges, made for 64x64, read every picture at their own size and still know the instance.
     */
    @Test
    void aLargerModelLearnsFromPicturesAtItsOwnSize(@TempDir Path tmp) throws Exception {
        StableDiffusion larger = atPictureSize128(tmp);
        assertEquals(128, larger.pictureSize());
        Tensor cInv = dev.perfusion.perfusion.CovarianceCache.inverseFor(larger, WorldCorpus.world(), tmp.resolve("cache"), 300, Progress.NONE);
        MethodEvaluation.Protocol p = new MethodEvaluation.Protocol(1, 2, 1, 1, List.of(0.7), 2, 5.0, List.of(ConceptMethods.PERFUSION), false, MethodEvaluation.Mask.NONE);
        MethodEvaluation.Report r = new MethodEvaluation(larger, cInv, WorldJudges.bundled(), p, tmp.resolve("work"), Progress.NONE)
                .run(HeldOut.instances());
        Instance first = HeldOut.instances().get(0);
        BufferedImage learnedFrom = javax.imageio.ImageIO.read(tmp.resolve("work/pictures").resolve(first.id()).resolve("00.png").toFile());
        assertEquals(128, learnedFrom.getWidth(), "the concept's pictures at the model's size");
        assertEquals(128, learnedFrom.getHeight());
        MethodEvaluation.Summary rendered = summary(r, MethodEvaluation.RENDERER);
        assertEquals(2, rendered.pictures());
        assertTrue(rendered.identification() >= 0.5 && rendered.fidelity() >= 0.5,
                "the judges know the world's own 128x128 pictures of the instance, read at their size: " + rendered);
        assertTrue(r.summaries().stream().anyMatch(s -> s.method().equals("perfusion")), r.summaries().toString());
    }

    /**
     * Without Perfusion among the methods there are no Perfusion concepts to combine: the run ends with its report and
     * no pair section (it once ended, after all its training, with a NullPointerException).
     */
    @Test
    void anEvaluationWithoutPerfusionHasNoPairSection(@TempDir Path tmp) throws Exception {
        Tensor cInv = dev.perfusion.perfusion.CovarianceCache.inverseFor(sd, WorldCorpus.world(), tmp.resolve("cache"), 300, Progress.NONE);
        dev.perfusion.training.ConceptMethod other = ConceptMethods.ALL.stream().filter(m -> m != ConceptMethods.PERFUSION).findFirst().orElseThrow();
        MethodEvaluation.Protocol p = new MethodEvaluation.Protocol(2, 1, 1, 1, List.of(0.7), 2, 5.0, List.of(other), true, MethodEvaluation.Mask.NONE);
        MethodEvaluation.Report r = new MethodEvaluation(sd, cInv, WorldJudges.bundled(), p, tmp.resolve("work"), Progress.NONE)
                .run(HeldOut.instances());
        assertTrue(r.combinations().isEmpty());
        assertTrue(r.summaries().stream().anyMatch(s -> s.method().equals(other.id())), r.summaries().toString());
        MethodEvaluation.write(r, p, tmp.resolve("report"), "bundled");
        assertFalse(Files.readString(tmp.resolve("report/report.md")).contains("Two concepts in one prompt"));
    }

    /** A run that reuses the concepts an earlier one left scores them as it did, and trains again where training differs. */
    @Test
    void aRunReusesTheConceptsAnEarlierRunTrainedTheSameWay(@TempDir Path tmp) throws Exception {
        Tensor cInv = dev.perfusion.perfusion.CovarianceCache.inverseFor(sd, WorldCorpus.world(), tmp.resolve("cache"), 300, Progress.NONE);
        MethodEvaluation.Protocol p = new MethodEvaluation.Protocol(1, 1, 1, 2, List.of(0.7), 2, 5.0, List.of(ConceptMethods.PERFUSION), false, MethodEvaluation.Mask.NONE);
        List<String> messages = new java.util.ArrayList<>();
        Progress listening = new Progress() {
            @Override public void update(String task, long done, long total, String detail) {}
            @Override public void message(String text) { messages.add(text); }
        };
        MethodEvaluation.Report first = evaluation(cInv, p, tmp, Progress.NONE).run(HeldOut.instances());
        Path concept = tmp.resolve("work/concepts").resolve(HeldOut.instances().get(0).id() + "-perfusion.safetensors");
        long written = Files.getLastModifiedTime(concept).toMillis();
        MethodEvaluation.Report again = evaluation(cInv, p, tmp, listening).reusingConcepts().run(HeldOut.instances());
        assertEquals(first.scores(), again.scores(), "the same concept scores the same");
        assertEquals(written, Files.getLastModifiedTime(concept).toMillis(), "nothing was trained");
        assertTrue(messages.stream().anyMatch(m -> m.contains("the concept trained earlier")), messages.toString());
        MethodEvaluation.Summary perfusion = again.summaries().stream().filter(s -> s.method().equals("perfusion")).findFirst().orElseThrow();
        assertEquals(0, perfusion.trainingSeconds(), "no training time measured for a reused concept");

        MethodEvaluation.Protocol longer = new MethodEvaluation.Protocol(1, 1, 1, 3, List.of(0.7), 2, 5.0, List.of(ConceptMethods.PERFUSION), false, MethodEvaluation.Mask.NONE);
        messages.clear();
        evaluation(cInv, longer, tmp, listening).reusingConcepts().run(HeldOut.instances());
        assertTrue(messages.stream().anyMatch(m -> m.contains("was trained otherwise; training again")), messages.toString());
        assertEquals("3", dev.perfusion.perfusion.ConceptFile.load(concept).settings().get("steps"));
    }

    /** A run that fails late leaves the scores it drew (hours of them in the full protocol) readable beside its concepts. */
    @Test
    void aFailedRunLeavesItsScoresSoFar(@TempDir Path tmp) throws Exception {
        Tensor cInv = dev.perfusion.perfusion.CovarianceCache.inverseFor(sd, WorldCorpus.world(), tmp.resolve("cache"), 300, Progress.NONE);
        MethodEvaluation.Protocol p = new MethodEvaluation.Protocol(1, 1, 1, 1, List.of(0.7), 2, 5.0, List.of(ConceptMethods.PERFUSION), false, MethodEvaluation.Mask.NONE);
        Files.createDirectories(tmp.resolve("work"));
        Files.writeString(tmp.resolve("work/concepts"), "a file where the concepts' folder goes: the first training fails");
        List<String> messages = new java.util.ArrayList<>();
        Progress listening = new Progress() {
            @Override public void update(String task, long done, long total, String detail) {}
            @Override public void message(String text) { messages.add(text); }
        };
        assertThrows(java.io.IOException.class, () -> evaluation(cInv, p, tmp, listening).run(HeldOut.instances()));
        List<MethodEvaluation.Score> sofar = MethodEvaluation.readScores(tmp.resolve("work/scores-so-far.csv"));
        assertEquals(List.of("base model", MethodEvaluation.RENDERER, MethodEvaluation.THROUGH_VAE),
                sofar.stream().map(MethodEvaluation.Score::method).distinct().toList(), "what was drawn before the training failed");
        assertTrue(messages.stream().anyMatch(m -> m.startsWith("the run failed; the scores so far are in " + tmp.resolve("work/scores-so-far.csv"))),
                messages.toString());
        Files.delete(tmp.resolve("work/concepts"));
        evaluation(cInv, p, tmp, Progress.NONE).run(HeldOut.instances());
        assertFalse(Files.exists(tmp.resolve("work/scores-so-far.csv")), "a finished run's report holds them all");
    }

    private static MethodEvaluation evaluation(Tensor cInv, MethodEvaluation.Protocol p, Path tmp, Progress progress) throws Exception {
        return new MethodEvaluation(sd, cInv, WorldJudges.bundled(), p, tmp.resolve("work"), progress);
    }

    private static MethodEvaluation.Summary summary(MethodEvaluation.Report r, String method) {
        return r.summaries().stream().filter(s -> s.method().equals(method)).findFirst().orElseThrow();
    }
}
