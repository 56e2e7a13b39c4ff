package dev.perfusion.cli;

import dev.perfusion.io.Png;
import dev.perfusion.perfusion.ConceptFile;
import dev.perfusion.world.Bundled;
import dev.perfusion.world.BundledWorld;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * What a user probing the CLI with bad input sees, on the bundled world model: one clear line naming the path and
 * what was expected, found before the model's weights are read (no "loading" progress line), and warnings where
 * the input is used but likely not what was meant.
 */
class BadInputTest {
    @TempDir Path tmp;

    /** An out-of-memory error passed picocli's handler: the user saw a page of stack trace and nothing on what to change. */
    @Test
    void runningOutOfMemorySaysWhichLimitAndWhatSetsIt() throws Exception {
        Path log = tmp.resolve("log");
        // a 48 MB heap: JavaCPP then allows 192 MB of tensors, less than the bundled model's loading takes
        Process child = new ProcessBuilder(CliRun.childCommand("48m", List.of(),
                "generate", "--prompt", "a teddy", "--steps", "1", "--out", tmp.resolve("out").toString(), "--threads", "1"))
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            assertTrue(child.waitFor(5, java.util.concurrent.TimeUnit.MINUTES), "a guard, not a speed check");
        } finally {
            child.destroyForcibly();
        }
        String said = Files.readString(log);
        assertEquals(1, child.exitValue(), said);
        assertTrue(said.lines().anyMatch(l -> l.startsWith("error: out of memory: ") && l.contains("PERFUSION_JAVA_OPTS=-Xmx")), said);
        assertFalse(said.contains("\tat "), "no stack trace: " + said);
    }


    @Test
    void trainChecksItsArgumentsAndPhotosBeforeLoadingTheModel() throws IOException {
        Path photos = photos("photos", 64, 64);
        for (String steps : new String[] {"0", "-5"}) {
            CliRun r = train(photos, tmp.resolve("a.safetensors"), "--train-steps", steps);
            assertRejectedBeforeLoading(r, "error: --train-steps must be at least 1, got " + steps);
        }
        assertRejectedBeforeLoading(train(photos, tmp.resolve("a.safetensors"), "--views", "0"), "--views must be at least 1, got 0");
        assertRejectedBeforeLoading(train(photos, tmp.resolve("a.safetensors"), "--embedding-lr", "-1"),
                "error: the embedding's learning rate must be 0 (keep the supercategory's) or positive and finite, got -1.0");
        assertRejectedBeforeLoading(train(photos, tmp.resolve("a.safetensors"), "--method", "textual-inversion", "--embedding-lr", "0"),
                "error: textual-inversion learns only the word's embedding, so its learning rate must be positive");
        assertRejectedBeforeLoading(train(photos, tmp.resolve("a.safetensors"), "--train-beta", "2.5"),
                "error: --train-beta: the gate threshold beta must be in (-1, 2), got 2.5");
        assertRejectedBeforeLoading(train(photos, tmp.resolve("a.safetensors"), "--train-tau", "0"),
                "error: --train-tau: the gate temperature tau must be in (0, 1], got 0.0");

        Path notImage = Files.createDirectories(tmp.resolve("not-image"));
        Files.writeString(notImage.resolve("cat.png"), "not a picture");
        assertRejectedBeforeLoading(train(notImage, tmp.resolve("b.safetensors")),
                "error: " + notImage.resolve("cat.png") + ": not an image this program can read");

        Path tiny = photos("tiny", 1, 1);
        assertRejectedBeforeLoading(train(tiny, tmp.resolve("c.safetensors")), "error: " + tiny.resolve("0.png")
                + ": 1x1 pixels is too small to learn from: training is at 64x64 and a photo's smaller side must be at least 16 pixels");
        assertFalse(Files.exists(tmp.resolve("c.safetensors")));

        Path masks = photos("masks", 32, 32);
        assertRejectedBeforeLoading(train(photos, tmp.resolve("d.safetensors"), "--mask", masks.toString()),
                "error: " + masks.resolve("0.png") + ": the mask is 32x32 pixels but its image 0.png is 64x64");
    }

    @Test
    void trainChecksTheOutputFolderBeforeLoadingTheModel() throws IOException {
        Path photos = photos("photos", 64, 64);
        Path blocker = tmp.resolve("blocker");
        Files.writeString(blocker, "a file where a folder should be");
        Path out = blocker.resolve("concepts/my-x.safetensors");
        assertRejectedBeforeLoading(train(photos, out), "error: cannot create output folder " + out.getParent()
                + ": " + blocker + " is a file, not a folder");

        Path samplesUnder = blocker.resolve("samples");
        assertRejectedBeforeLoading(train(photos, tmp.resolve("e.safetensors"), "--samples", samplesUnder.toString()),
                "error: cannot create output folder " + samplesUnder);
    }

    @Test
    void trainRefusesAReadOnlyOutputFolderBeforeLoadingTheModel() throws IOException {
        Path photos = photos("photos", 64, 64);
        Path readOnly = Files.createDirectories(tmp.resolve("read-only"));
        Files.setPosixFilePermissions(readOnly, PosixFilePermissions.fromString("r-xr-xr-x"));
        try {
            // the superuser may write anywhere: then there is nothing to refuse
            assumeTrue(!canCreateFileIn(readOnly), "skipped: this user can write into a read-only folder");
            assertRejectedBeforeLoading(train(photos, readOnly.resolve("my-x.safetensors")),
                    "error: output folder " + readOnly + " is not writable");
        } finally {
            Files.setPosixFilePermissions(readOnly, PosixFilePermissions.fromString("rwxr-xr-x"));
        }
    }

    @Test
    void aModelFolderWithoutTokenizerSaysSo() throws IOException {
        Path model = BundledWorld.copyOfModel(tmp.resolve("no-tokenizer"));
        deleteTree(model.resolve("tokenizer"));
        CliRun r = run("generate", "--model", model.toString(), "--prompt", "a cat", "--steps", "1", "--out", tmp.resolve("x.png").toString());
        assertEquals(2, r.rc());
        assertTrue(r.err().startsWith("error: " + model + ": the model folder has no tokenizer/ folder"), r.err());
        assertTrue(r.err().contains("; give a tokenizer folder holding vocab.json and merges.txt (--tokenizer DIR)"), r.err());
        assertFalse(r.err().contains("single-file"), r.err());

        Files.createDirectories(model.resolve("tokenizer"));
        Files.copy(Bundled.model().resolve("tokenizer/vocab.json"), model.resolve("tokenizer/vocab.json"));
        CliRun half = run("generate", "--model", model.toString(), "--prompt", "a cat", "--steps", "1", "--out", tmp.resolve("x.png").toString());
        assertTrue(half.err().contains(model + ": the model folder's tokenizer/ lacks merges.txt"), half.err());
    }

    @Test
    void aFolderGivenForAFileIsNamed() throws IOException {
        Path folder = Files.createDirectories(tmp.resolve("my-teddy.safetensors"));
        CliRun inspect = run("inspect", folder.toString());
        assertEquals(2, inspect.rc());
        assertEquals("error: " + folder + ": a folder, not a concept file (the .safetensors file 'train' writes)", inspect.err().trim());
        CliRun model = run("inspect", Bundled.model().toString());
        assertEquals(0, model.rc(), model.err());
        assertTrue(model.out().contains("layout          diffusers folder (weights in safetensors files)"), model.out());

        CliRun generate = run("generate", "--concept", folder.toString(), "--prompt", "a my-teddy", "--steps", "1",
                "--out", tmp.resolve("x.png").toString());
        assertTrue(generate.err().startsWith("error: " + folder + ": a folder, not a concept file"), generate.err());
        assertFalse(generate.out().contains("loading"), generate.out());

        Path broken = BundledWorld.copyOfModel(tmp.resolve("broken"));
        Path weights = broken.resolve("unet/diffusion_pytorch_model.safetensors");
        Files.delete(weights);
        Files.createDirectories(weights);
        CliRun r = run("generate", "--model", broken.toString(), "--prompt", "a cat", "--steps", "1", "--out", tmp.resolve("y.png").toString());
        assertTrue(r.err().startsWith("error: " + weights + ": a folder where the component's weights file (safetensors) is expected"), r.err());
    }

    @Test
    void forceOverAHashMismatchWarnsNamingTheFileAndTheHash() throws IOException {
        ConceptFile cat = ConceptFile.load(Bundled.concept("my-cat"));
        Path other = tmp.resolve("my-cat-elsewhere.safetensors");
        new ConceptFile(cat.word(), cat.supercategory(), cat.embedding(), cat.iStar(), cat.edit(),
                cat.beta(), cat.tau(), "sha256-f32-sampled4096:another-unet", cat.textEncoderHash(), cat.settings()).save(other);
        List<String> args = List.of("generate", "--concept", other.toString(), "--prompt", "a my-cat", "--steps", "1",
                "--out", tmp.resolve("z.png").toString());
        CliRun refused = run(args.toArray(String[]::new));
        assertTrue(refused.err().contains("was made for another base model"), refused.err());
        assertTrue(refused.err().trim().endsWith("; --force uses it anyway"), "the command names its flag: " + refused.err());

        List<String> forced = new ArrayList<>(args);
        forced.add("--force");
        CliRun r = run(forced.toArray(String[]::new));
        assertEquals(0, r.rc(), r.all());
        assertTrue(r.out().contains("warning: " + other + ": concept 'my-cat' was made for another UNet (its hash "
                + "sha256-f32-sampled4096:another-unet, this model's " + cat.baseModelHash() + "); used anyway (forced), its results may be poor"), r.out());
        assertFalse(r.out().contains("another text encoder"), "the text encoder's hash matches: " + r.out());
    }

    @Test
    void aPromptWithoutTheConceptWordIsWarnedAbout() throws IOException {
        String cat = Bundled.concept("my-cat").toString();
        CliRun r = run("generate", "--concept", cat, "--prompt", "a cat on the beach", "--prompt", "a my-cat on the beach",
                "--steps", "1", "--out", tmp.resolve("g").toString());
        assertEquals(0, r.rc(), r.all());
        String warning = "warning: the prompt \"a cat on the beach\" does not contain the concept word 'my-cat': the concept has no effect on it";
        assertEquals(1, count(r.out(), warning), r.out());
        assertEquals(0, count(r.out(), "\"a my-cat on the beach\" does not contain"), r.out());

        CliRun sweep = run("generate", "--concept", cat, "--prompt", "a cat on the beach", "--prompt", "a my-cat on the beach",
                "--beta-sweep", "0.6,0.8", "--steps", "1", "--out", tmp.resolve("sweep.png").toString());
        assertEquals(0, sweep.rc(), sweep.all());
        assertEquals(1, count(sweep.out(), warning), "once per prompt, not per beta: " + sweep.out());
    }

    @Test
    void generateNamesTheFlagOfWhatTheLibraryRefuses() throws IOException {
        String cat = Bundled.concept("my-cat").toString(), out = tmp.resolve("f.png").toString();
        assertRejectedBeforeLoading(run("generate", "--concept", cat, "--prompt", "a my-cat", "--beta", "2.5", "--out", out),
                "error: --beta: the gate threshold beta must be in (-1, 2), got 2.5");
        assertRejectedBeforeLoading(run("generate", "--concept", cat, "--prompt", "a my-cat", "--tau", "0", "--out", out),
                "error: --tau: the gate temperature tau must be in (0, 1], got 0.0");
        assertRejectedBeforeLoading(run("generate", "--concept", cat, "--prompt", "a my-cat", "--beta-sweep", "0.5,-3", "--out", out),
                "error: --beta-sweep: the gate threshold beta must be in (-1, 2), got -3.0");
        assertRejectedBeforeLoading(run("generate", "--concept", cat, "--prompt", "a my-cat", "--concept-start", "1", "--out", out),
                "error: --concept-start: the concept start must be a fraction of the denoising steps in [0, 1), got 1.0");
        assertRejectedBeforeLoading(run("eval", "--concept-start", "-0.5", "--out", tmp.resolve("e").toString()),
                "error: --concept-start: the concept start must be a fraction of the denoising steps in [0, 1), got -0.5");
        assertRejectedBeforeLoading(run("generate", "--prompt", "a cat on the left", "--side-steering", "-1", "--out", out),
                "error: --side-steering: the side steering's strength must be a number of at least 0 (0: none), got -1.0");
        assertRejectedBeforeLoading(run("prompt-following", "--side-steering", "NaN", "--out", tmp.resolve("p").toString()),
                "error: --side-steering: the side steering's strength must be a number of at least 0 (0: none), got NaN");
        assertRejectedBeforeLoading(run("generate", "--prompt", "a cat", "--steps", "0", "--out", out), "error: --steps must be at least 1, got 0");
        assertRejectedBeforeLoading(run("generate", "--prompt", "a cat", "--guidance", "-1", "--out", out), "error: --guidance must be at least 0, got -1.0");
        assertRejectedBeforeLoading(run("generate", "--concept", cat, "--prompt", "a my-cat", "--beta-sweep", "0.5", "--save-latents",
                tmp.resolve("l.npy").toString(), "--out", out), "error: --beta-sweep draws one grid from --seed: not with --init-latents, --save-latents or --count");
        assertFalse(Files.exists(tmp.resolve("l.npy")));
        // what only concepts read, and a negative prompt with guidance off, were ignored and the picture said otherwise
        assertRejectedBeforeLoading(run("generate", "--prompt", "a my-cat", "--beta", "0.5", "--global-lock", "--out", out),
                "error: --beta, --global-lock set how concepts are drawn, and no --concept is given: the picture would be the base model's");
        assertRejectedBeforeLoading(run("generate", "--prompt", "a cat", "--negative-prompt", "blurry", "--guidance", "1", "--out", out),
                "error: --negative-prompt: a negative prompt acts through classifier-free guidance, which is off at guidance 1.0 (1 or below): "
                        + "raise the guidance or leave the negative prompt out");
        assertRejectedBeforeLoading(run("eval", "--beta", "0.5,9", "--out", tmp.resolve("e").toString()),
                "error: the gate threshold beta must be in (-1, 2), got 9.0");
        assertRejectedBeforeLoading(run("eval", "--beta", "0.7,0.7", "--out", tmp.resolve("e").toString()), "error: a beta is named twice: [0.7, 0.7]");
        assertRejectedBeforeLoading(run("s-profile", "--top", "-1"), "error: --top must be at least 0, got -1");
        // a stage or judge of no steps exported its untrained weights as finished (the judges over the bundled ones)
        assertRejectedBeforeLoading(run("pretrain", "--train-steps", "0", "--work", tmp.resolve("p").toString()), "error: --train-steps must be at least 1, got 0");
        assertRejectedBeforeLoading(run("judges", "--only", "clip", "--clip-steps", "0", "--out", tmp.resolve("j").toString()),
                "error: --clip-steps must be at least 1, got 0");
        assertRejectedBeforeLoading(run("pretrain", "--decoder-only", "--contrastive-only", "--work", tmp.resolve("p").toString()),
                "error: --decoder-only and --contrastive-only each run one stage: give one");
        CliRun clipSkip = run("generate", "--prompt", "a cat", "--clip-skip", "9", "--steps", "1", "--out", out);
        assertEquals(2, clipSkip.rc());
        assertTrue(clipSkip.err().contains("error: --clip-skip: the text encoder layers to skip must be in 0..1 (it has 2 layers), got 9"), clipSkip.err());
    }

    /** Counts and steps of the long-running commands, which failed late (a division by zero, an empty median) or reported what they did not do. */
    @Test
    void countsOfTheLongCommandsAreCheckedFirst() {
        String e = tmp.resolve("e").toString();
        assertRejectedBeforeLoading(run("eval", "--prompts", "40", "--out", e), "error: --prompts must be in 1..16 (the evaluation prompts), got 40");
        assertRejectedBeforeLoading(run("eval", "--seeds", "0", "--out", e), "error: --seeds must be at least 1, got 0");
        assertRejectedBeforeLoading(run("eval", "--train-steps", "0", "--out", e), "error: --train-steps must be at least 1, got 0");
        assertRejectedBeforeLoading(run("bench", "--repeats", "0", "--skip-load", "--skip-vae", "--sizes", "64"), "error: --repeats must be at least 1, got 0");
        assertRejectedBeforeLoading(run("bench", "--sizes", "60", "--skip-load", "--skip-vae"), "error: --sizes: each a multiple of 8 pixels, got 60");
        String work = tmp.resolve("w").toString();
        assertRejectedBeforeLoading(run("pretrain", "--work", work, "--sample-every", "-1"), "error: --sample-every must be 0 (none) or more steps, got -1");
        assertRejectedBeforeLoading(run("pretrain", "--work", work, "--checkpoint-every", "-5"), "error: --checkpoint-every must be 0 (none) or more steps, got -5");
        assertRejectedBeforeLoading(run("pretrain", "--work", work, "--max-minutes", "-1"), "error: --max-minutes must be 0 (no limit) or more, got -1.0");
    }

    /** A quick `train` (should it get as far as training) with {@code more} options over the defaults given here. */
    private CliRun train(Path photos, Path out, String... more) {
        Map<String, String> options = new LinkedHashMap<>(Map.of("--images", photos.toString(), "--word", "my-x",
                "--supercategory", "teddy", "--out", out.toString(), "--train-steps", "1", "--batch", "1", "--accumulate", "1",
                "--views", "1"));
        for (int i = 0; i < more.length; i += 2) options.put(more[i], more[i + 1]);
        List<String> args = new ArrayList<>(List.of("train"));
        options.forEach((k, v) -> args.addAll(List.of(k, v)));
        return run(args.toArray(String[]::new));
    }

    @Test
    void evalMergeRefusesToOverwriteAMergedRunOrToTrain() throws IOException {
        Path run = Files.createDirectories(tmp.resolve("run"));
        String scores = "method,variant,beta,instance,prompt,seed,fidelity,alignment,leakage,identified,clip_image,clip_text\n";
        Files.writeString(run.resolve("scores.csv"), scores);
        CliRun over = CliRun.of("eval", "--merge", run.toString(), "--out", run.toString());
        assertEquals(2, over.rc(), over.all());
        assertTrue(over.err().contains("--out " + run + " is one of the merged runs: its own report would be replaced"), over.err());
        assertEquals(scores, Files.readString(run.resolve("scores.csv")), "the run's scores are untouched");
        CliRun training = CliRun.of("eval", "--merge", run.toString(), "--method", "perfusion", "--out", tmp.resolve("m").toString());
        assertTrue(training.err().contains("--merge trains nothing: give it only the runs' folders and --out (not --method)"), training.err());
        CliRun defaults = CliRun.of("eval", "--merge", run.toString(), "--mask", "none", "--embedding-lr", "0.006", "--out", tmp.resolve("m").toString());
        assertEquals(2, defaults.rc(), defaults.all());
        assertTrue(defaults.err().contains("(not --mask, --embedding-lr)"), "a given option equal to its default is refused too: " + defaults.err());
        CliRun missing = CliRun.of("eval", "--merge", tmp.resolve("nothing").toString(), "--out", tmp.resolve("m").toString());
        assertTrue(missing.err().contains(tmp.resolve("nothing") + ": no scores.csv (give the --out folder of an earlier eval)"), missing.err());
        assertFalse(Files.exists(tmp.resolve("m")), "nothing was written");
    }

    @Test
    void pretrainNamesTheLocalizationFlagItRefusesBeforeWritingAnything() {
        String work = tmp.resolve("pretrain-work").toString();
        assertRejectedBeforeLoading(run("pretrain", "--work", work, "--attention-localization", "-1"),
                "--attention-localization: attention localization weight -1.0: expected a finite number >= 0");
        assertRejectedBeforeLoading(run("pretrain", "--work", work, "--attention-localization", "0.03", "--localization-form", "wide"),
                "Invalid value for option '--localization-form': 'wide' is not one of gap, share");
        assertRejectedBeforeLoading(run("pretrain", "--work", work, "--localization-form", "gap"), "--localization-form needs --attention-localization W");
        assertRejectedBeforeLoading(run("pretrain", "--work", work, "--train-vae"), "--train-vae needs --continue-from MODEL");
        assertFalse(Files.exists(tmp.resolve("pretrain-work")), "the work folder was made");
    }

    @Test
    void moreThreadsThanCoresAreWarnedOf() {
        int more = dev.perfusion.tensor.Threads.cores() + 1;
        try {
            CliRun r = run("generate", "--threads", Integer.toString(more), "--prompt", "x", "--steps", "0");
            assertTrue(r.err().contains("warning: --threads " + more + " is more than this machine's " + (more - 1) + " cores"), r.err());
            assertTrue(r.err().contains("--steps must be at least 1"), r.err());
            assertFalse(run("generate", "--threads", "1", "--prompt", "x", "--steps", "0").err().contains("warning"));
        } finally {
            dev.perfusion.tensor.Threads.use(dev.perfusion.tensor.Threads.cores());
        }
    }

    /** Each said only the file's name, or failed after its work (prompt-following, judges: minutes to hours of it). */
    @Test
    void everyCommandWritingAFolderSaysSoBeforeItsWorkWhenAFileHasTheName() throws IOException {
        Path file = Files.writeString(tmp.resolve("a-file"), "a user's file");
        String f = file.toString();
        for (String[] args : List.of(new String[] {"demo", "--out", f}, new String[] {"eval", "--out", f}, new String[] {"judges", "--only", "counter", "--out", f},
                new String[] {"prompt-following", "--out", f}, new String[] {"pretrain", "--work", f}, new String[] {"serve", "--port", "0", "--concepts", tmp.resolve("library").toString(), "--outputs", f},
                new String[] {"serve", "--port", "0", "--concepts", f, "--outputs", tmp.resolve("outputs").toString()})) {
            CliRun r = run(args);
            assertNotEquals(0, r.rc(), r.all());
            assertEquals("error: cannot create output folder " + f + ": " + f + " is a file, not a folder", r.err().strip(), String.join(" ", args));
        }
        assertEquals("a user's file", Files.readString(file));
    }

    @Test
    void benchRefusesToWriteItsRandomModelOverAnExistingFolder() throws IOException {
        Path existing = Files.createDirectories(tmp.resolve("existing"));
        Files.writeString(existing.resolve("keep.txt"), "a user's file");
        CliRun r = run("bench", "--save-model", existing.toString());
        assertNotEquals(0, r.rc(), r.all());
        assertTrue(r.err().contains(existing + " already exists: give a new name for the random-weight model"), r.err());
        assertEquals(List.of(existing.resolve("keep.txt")), Files.list(existing).toList(), "nothing written into it");
    }

    @Test
    void benchTrainsOnlyOnAWorldModelItCanReadTheRecipeOf() throws IOException {
        Path notAWorldModel = Files.createDirectories(tmp.resolve("not-a-world-model"));
        assertRejectedBeforeLoading(run("bench", "--training", "--train-steps", "20", "--model", notAWorldModel.toString()),
                "--model " + notAWorldModel + ": not a world model trained by pretrain (no recipe.json there)");
        assertRejectedBeforeLoading(run("bench", "--model", notAWorldModel.toString()),
                "--model is the world model of --training; the engine benchmark's model is --family's random one");
    }

    /** An option of another mode of bench was accepted and ignored: the table looked whole without the figures asked for. */
    @Test
    void benchRefusesOptionsOfAnotherMode() {
        assertRejectedBeforeLoading(run("bench", "--training", "--perfusion", "--train-steps", "20"),
                "error: --perfusion does nothing in --training: leave it out, or run the mode it belongs to");
        assertRejectedBeforeLoading(run("bench", "--train-steps", "50", "--pretrain-steps", "0", "--skip-load", "--skip-vae", "--sizes", "64"),
                "error: --train-steps, --pretrain-steps do nothing in the engine benchmark (without --training): leave them out, or run the mode they belong to");
        assertRejectedBeforeLoading(run("bench", "--save-model", tmp.resolve("m").toString(), "--training", "--precision", "bf16"),
                "error: --training, --precision do nothing in --save-model (it times nothing)");
        assertFalse(Files.exists(tmp.resolve("m")), "nothing written");
    }

    private static void assertRejectedBeforeLoading(CliRun r, String expected) {
        assertEquals(2, r.rc(), r.all());
        assertTrue(r.err().contains(expected), r.err());
        assertFalse(r.out().contains("loading"), "the model was loaded first: " + r.out());
    }

    private Path photos(String name, int width, int height) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve(name));
        Png.write(dir.resolve("0.png"), new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB), Map.of());
        return dir;
    }

    private static boolean canCreateFileIn(Path dir) {
        try {
            Files.delete(Files.createTempFile(dir, "probe", ".tmp"));
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    @Test
    void everyCommandUsesEveryCoreUnlessToldAndTakesThreadsBeforeOrAfterItsName() {
        String concept = Bundled.concept("my-cat").toString();
        try {
            assertEquals(0, run("inspect", concept).rc());
            assertEquals(Runtime.getRuntime().availableProcessors(), org.bytedeco.pytorch.global.torch.get_num_threads());
            assertEquals(0, run("inspect", "--threads", "1", concept).rc());
            assertEquals(1, org.bytedeco.pytorch.global.torch.get_num_threads());
            assertEquals(0, run("--threads", "1", "inspect", concept).rc());
            assertEquals(1, org.bytedeco.pytorch.global.torch.get_num_threads());
            CliRun none = run("inspect", "--threads", "0", concept);
            assertEquals(2, none.rc());
            assertTrue(none.err().startsWith("error: --threads must be at least 1, got 0"), none.err());
        } finally {
            dev.perfusion.tensor.Threads.use(Runtime.getRuntime().availableProcessors());
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(java.util.Comparator.reverseOrder()).toList()) Files.delete(p);
        }
    }

    private static int count(String text, String part) {
        int n = 0;
        for (int i = text.indexOf(part); i >= 0; i = text.indexOf(part, i + 1)) n++;
        return n;
    }

    private static CliRun run(String... args) {
        return CliRun.of(args);
    }
}
