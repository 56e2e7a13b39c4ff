package dev.perfusion.pretrain;

import dev.perfusion.io.Safetensors;
import dev.perfusion.io.layout.ModelSource;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Threads;
import dev.perfusion.text.ClipTextModel;
import dev.perfusion.unet.UNet2DConditionModel;
import dev.perfusion.util.Progress;
import dev.perfusion.vae.AutoencoderKL;
import dev.perfusion.world.Bundled;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.DoubleFunction;
import java.util.function.ToDoubleFunction;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

class PretrainerTest {
    @TempDir Path tmp;

    @Test
    void recipeIsAnSdFamilyModelThatFitsTheShippingBudget() {
        BaseModelRecipe r = BaseModelRecipe.standard();
        long params = UNet2DConditionModel.create(r.unetConfig()).parameterCount()
                + AutoencoderKL.create(r.vaeConfig(1)).parameterCount()
                + ClipTextModel.create(r.textEncoderConfig(1000, 998, 999, 999)).parameterCount();
        assertTrue(params * 2 < 40_000_000L, "fp16 weights must fit 40 MB: " + params + " parameters");
        assertEquals(16, r.latentSize());
        assertEquals(r.textHidden(), r.unetConfig().crossAttentionDim());
        assertFalse(UNet2DConditionModel.create(r.unetConfig()).crossAttentionLayers().isEmpty());
    }

    /** The shipped model records the frozen-text recipe, which is what continuing it (and {@code bench --training}) must build. */
    @Test
    void theShippedModelRecordsItsRecipe() throws Exception {
        assertEquals(BaseModelRecipe.frozenText().architecture(), BaseModelRecipe.recordedIn(Bundled.model()).architecture());
        assertTrue(BaseModelRecipe.recordedIn(Bundled.model()).frozenTextEncoder());
        Files.writeString(tmp.resolve("recipe.json"), "{\"what\": \"x\", \"recipe\": {\"imageSize\": \"big\"}}");
        java.io.IOException e = assertThrows(java.io.IOException.class, () -> BaseModelRecipe.recordedIn(tmp));
        assertTrue(e.getMessage().contains(tmp.resolve("recipe.json").toString()) && e.getMessage().contains("imageSize"), e.getMessage());
    }

    /** A recipe from before the attention localization reads as one without it, and a recipe with it keeps its weight. */
    @Test
    void attentionLocalizationIsRecordedAndOlderRecipesHaveNone() throws Exception {
        com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
        BaseModelRecipe without = BaseModelRecipe.frozenText().withAttentionLocalization(0, null);
        assertFalse(json.writeValueAsString(without).contains("attentionLocalization"), "older readers see the recipe they know");
        Files.writeString(tmp.resolve("recipe.json"), "{\"recipe\": " + json.writeValueAsString(without.withAttentionLocalization(0.03, BaseModelRecipe.Localization.SHARE)) + "}");
        assertEquals(0.03, BaseModelRecipe.recordedIn(tmp).attentionLocalization());
        assertEquals(BaseModelRecipe.Localization.SHARE, BaseModelRecipe.recordedIn(tmp).localization());
        Files.writeString(tmp.resolve("recipe.json"), "{\"recipe\": " + json.writeValueAsString(without) + "}");
        assertEquals(0.0, BaseModelRecipe.recordedIn(tmp).attentionLocalization());
        assertEquals(BaseModelRecipe.Localization.GAP, BaseModelRecipe.recordedIn(tmp).localization(), "FastComposer's form where none is named");
        for (double bad : new double[] {-0.1, Double.NaN, Double.POSITIVE_INFINITY}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> without.withAttentionLocalization(bad, BaseModelRecipe.Localization.GAP));
            assertTrue(e.getMessage().contains("attention localization weight"), e.getMessage());
        }
    }

    static Stream<Arguments> laterWeights() {
        BaseModelRecipe r = BaseModelRecipe.frozenText();
        return Stream.of(
                Arguments.of("decoderAdversarialWeight", (DoubleFunction<BaseModelRecipe>) r::withDecoderAdversarial,
                        (ToDoubleFunction<BaseModelRecipe>) BaseModelRecipe::decoderAdversarialWeight),
                Arguments.of("accessoryLossWeight", (DoubleFunction<BaseModelRecipe>) r::withAccessoryLossWeight,
                        (ToDoubleFunction<BaseModelRecipe>) BaseModelRecipe::accessoryLossWeight));
    }

    /** A recipe from before a weight was added reads as one without it; one with it keeps its weight; the shipped one has none. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("laterWeights")
    void laterWeightsAreRecordedAndOlderRecipesHaveNone(String field, DoubleFunction<BaseModelRecipe> with, ToDoubleFunction<BaseModelRecipe> weight) throws Exception {
        com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
        BaseModelRecipe without = BaseModelRecipe.frozenText();
        assertFalse(json.writeValueAsString(without).contains(field), "older readers see the recipe they know");
        Files.writeString(tmp.resolve("recipe.json"), "{\"recipe\": " + json.writeValueAsString(with.apply(0.5)) + "}");
        assertEquals(0.5, weight.applyAsDouble(BaseModelRecipe.recordedIn(tmp)));
        Files.writeString(tmp.resolve("recipe.json"), "{\"recipe\": " + json.writeValueAsString(without) + "}");
        assertEquals(0.0, weight.applyAsDouble(BaseModelRecipe.recordedIn(tmp)));
        assertEquals(0.0, weight.applyAsDouble(BaseModelRecipe.recordedIn(Bundled.model())), "the shipped model's recipe has none");
    }

    /** A latent pixel weighs 1, and 1 + W times the largest accessory mask value of the pixels it covers. */
    @Test
    void accessoryWeightsAreOneButWhereAnAccessoryCoversALatentPixel() {
        float[] mask = new float[8 * 8];
        mask[5 * 8 + 6] = 0.5f; // row 5, column 6: latent pixel (1, 1) at factor 4
        mask[5 * 8 + 7] = 0.25f;
        try (dev.perfusion.tensor.Scope s = dev.perfusion.tensor.Scope.open()) {
            org.bytedeco.pytorch.Tensor w = DiffusionStage.accessoryWeights(Ops.fromFloats(mask, 1, 1, 8, 8), 2, 4);
            assertArrayEquals(new long[] {1, 1, 2, 2}, Ops.shape(w));
            assertArrayEquals(new float[] {1, 1, 1, 3}, Ops.toFloats(w), 1e-6f);
        }
    }

    @Test
    void learningRateWarmsUpThenDecaysToATenth() {
        assertEquals(0.5 * 1.0, StageLoop.learningRateScale(99, 1000, 200) / StageLoop.learningRateScale(199, 1000, 200), 0.05);
        assertTrue(StageLoop.learningRateScale(500, 1000, 200) < StageLoop.learningRateScale(250, 1000, 200));
        assertEquals(0.1, StageLoop.learningRateScale(1000, 1000, 0), 1e-9);
    }

    /**
     * With two threads every stage splits each batch into parts whose forward and backward run side by side (the
     * joint recipe: text encoder and UNet; the VAE, trained further, and its decoder); each must learn what the whole
     * batch learns on one thread, with the attention localization regulariser too (its parts' terms add up over the
     * whole batch's named words) and the loss weighted towards the accessories.
     */
    @ParameterizedTest
    @ValueSource(doubles = {0, 1})
    void batchPartsSideBySideLearnWhatTheWholeBatchLearns(double localization) throws Exception {
        BaseModelRecipe r = BaseModelRecipe.standard().quick(2, 2).withAttentionLocalization(localization, BaseModelRecipe.Localization.SHARE)
                .withAccessoryLossWeight(4 * localization);
        int threadsBefore = Threads.configured();
        try {
            Threads.use(1);
            Path model = new Pretrainer(r, tmp.resolve("base"), Progress.NONE).schedule(1000, 1000).run().model();
            Path whole = new Pretrainer(r.withSteps(2, 3, 2), tmp.resolve("whole"), Progress.NONE).schedule(1000, 1000).continueFrom(model).trainVaeFurther().run().model();
            Threads.use(2);
            Path parts = new Pretrainer(r.withSteps(2, 3, 2), tmp.resolve("parts"), Progress.NONE).schedule(1000, 1000).continueFrom(model).trainVaeFurther().run().model();

            List<String> wholeLog = Files.readAllLines(tmp.resolve("whole/losses.csv")), partsLog = Files.readAllLines(tmp.resolve("parts/losses.csv"));
            assertEquals(1 + 2 + 3 + 2 + (localization > 0 ? 3 : 0), wholeLog.size(), wholeLog.toString());
            for (int i = 1; i < wholeLog.size(); i++) {
                String[] a = wholeLog.get(i).split(","), b = partsLog.get(i).split(",");
                assertEquals(a[0], b[0]);
                // the log keeps six decimals; the diffusion stage's latents are bf16 where the CPU computes it natively,
                // which the parts' threads round a little differently from the whole's (measured: up to 1.7e-5 of 1.34 by step 2)
                assertEquals(Double.parseDouble(a[2]), Double.parseDouble(b[2]), a[0].equals("diffusion") ? 1e-4 : 2e-6, "the " + a[0] + " loss of step " + a[1]);
                if (a[0].equals("localization")) assertTrue(Double.parseDouble(a[2]) > 0 && Double.parseDouble(a[2]) < 1, wholeLog.get(i));
            }
            double worst = 0;
            String worstName = "";
            for (String weights : List.of("unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors", "vae/diffusion_pytorch_model.safetensors")) {
                Safetensors one = Safetensors.open(whole.resolve(weights)), two = Safetensors.open(parts.resolve(weights));
                for (String name : one.entries().keySet()) {
                    double diff = Ops.item(one.get(name).sub(two.get(name)).abs().max());
                    if (diff > worst) {
                        worst = diff;
                        worstName = weights + " " + name;
                    }
                }
            }
            // fp16 rounding (1.2e-4 at 0.25), and weights whose gradient is float noise (a key's bias, which softmax
            // ignores), which Adam moves by a full step either way
            assertTrue(worst <= 1e-3, worstName + " differs by " + worst);
        } finally {
            Threads.use(threadsBefore);
        }
    }

    /**
     * Mixed precision ({@code pretrain --precision bf16}): the UNet's forward in bf16 (attention and the localization
     * term's maps included) learns what the fp32 one learns from the same model and batches, and the recipe says so.
     */
    @Test
    void bf16PretrainingLearnsWhatFp32Learns() throws Exception {
        BaseModelRecipe r = BaseModelRecipe.standard().quick(2, 2).withAttentionLocalization(1, BaseModelRecipe.Localization.SHARE);
        int threadsBefore = Threads.configured();
        try {
            Threads.use(1);
            Path model = new Pretrainer(r, tmp.resolve("base"), Progress.NONE).schedule(1000, 1000).run().model();
            Path fp32 = new Pretrainer(r.withSteps(2, 4, 2), tmp.resolve("fp32"), Progress.NONE).schedule(1000, 1000).continueFrom(model).run().model();
            Path bf16 = new Pretrainer(r.withSteps(2, 4, 2).withBf16(true), tmp.resolve("bf16"), Progress.NONE).schedule(1000, 1000).continueFrom(model).run().model();
            assertTrue(BaseModelRecipe.recordedIn(bf16).bf16() && !BaseModelRecipe.recordedIn(fp32).bf16());
            assertFalse(Files.readString(fp32.resolve("recipe.json")).contains("bf16"), "older readers see the recipe they know");

            List<String> fp32Log = Files.readAllLines(tmp.resolve("fp32/losses.csv")), bf16Log = Files.readAllLines(tmp.resolve("bf16/losses.csv"));
            assertEquals(fp32Log.size(), bf16Log.size());
            double furthest = 0;
            for (int i = 1; i < fp32Log.size(); i++) {
                String[] a = fp32Log.get(i).split(","), b = bf16Log.get(i).split(",");
                double expected = Double.parseDouble(a[2]), actual = Double.parseDouble(b[2]);
                // measured: the diffusion loss up to 0.7% off by step 4, the localization term 5e-5
                assertEquals(expected, actual, 0.02 * Math.abs(expected), "the " + a[0] + " loss of step " + a[1]);
                furthest = Math.max(furthest, Math.abs(actual - expected));
            }
            assertTrue(furthest > 1e-5, "the bf16 run computed in bf16 (its losses are fp32's to the last digit)");
            String weights = "unet/diffusion_pytorch_model.safetensors";
            Safetensors before = Safetensors.open(model.resolve(weights)), one = Safetensors.open(fp32.resolve(weights)), two = Safetensors.open(bf16.resolve(weights));
            List<org.bytedeco.pytorch.Tensor> oneChanges = new ArrayList<>(), twoChanges = new ArrayList<>();
            for (String name : before.entries().keySet()) {
                org.bytedeco.pytorch.Tensor start = before.get(name).to(torch.ScalarType.Float);
                oneChanges.add(one.get(name).to(torch.ScalarType.Float).sub(start).flatten(0, -1));
                twoChanges.add(two.get(name).to(torch.ScalarType.Float).sub(start).flatten(0, -1));
            }
            org.bytedeco.pytorch.Tensor a = Ops.cat(oneChanges, 0), b = Ops.cat(twoChanges, 0);
            double cosine = Ops.cosine(a, b);
            // measured: cosine 0.997, sizes within 0.1%
            assertTrue(cosine > 0.99, "the UNet's change in bf16 against fp32's: cosine " + cosine);
            assertEquals(1.0, Ops.item(b.norm()) / Ops.item(a.norm()), 0.05, "the size of the UNet's change in bf16 against fp32's");
        } finally {
            Threads.use(threadsBefore);
        }
    }

    /** `pretrain --checkpoint-every 0 --sample-every 0`: no checkpoint but at a stop, samples only at each stage's end (it divided by zero). */
    @Test
    void zeroIntervalsMeanNoCheckpointsAndOnlyTheLastSamples() throws Exception {
        BaseModelRecipe r = BaseModelRecipe.standard().quick(3, 3);
        Path work = tmp.resolve("zero");
        Pretrainer.Result stopped = new Pretrainer(r, work, Progress.NONE).schedule(0, 0).timeLimit(0).run();
        assertFalse(stopped.finished());
        assertTrue(Files.isRegularFile(work.resolve("checkpoint-vae.safetensors")), "a stop still keeps where it stopped");
        Pretrainer.Result done = new Pretrainer(r, work, Progress.NONE).schedule(0, 0).run();
        assertTrue(done.finished());
        try (var samples = Files.list(work.resolve("samples"))) {
            assertEquals(List.of("decoder-00003.png", "step-00003.png", "vae-00003.png"), samples.map(f -> f.getFileName().toString()).sorted().toList());
        }
    }

    /**
     * A checkpoint past the steps now asked was exported as the shorter run's (unsampled, loss NaN), and a VAE of other
     * shapes left in the folder was learned on under the new recipe's name: both are refused, saying how to go on.
     */
    @Test
    void aCheckpointPastTheStepsAskedAndAVaeOfOtherShapesAreRefused() throws Exception {
        BaseModelRecipe r = BaseModelRecipe.standard().quick(3, 3);
        Path work = tmp.resolve("past");
        assertEquals(1, new Pretrainer(r, work, Progress.NONE).schedule(1, 1000).timeLimit(0).run().step());
        java.io.IOException past = assertThrows(java.io.IOException.class, () -> new Pretrainer(r.withSteps(1, 3, 3), work, Progress.NONE).run());
        assertTrue(past.getMessage().contains("the vae stage's checkpoint is at step 1, past the 1 steps asked: give more than 1"), past.getMessage());
        Pretrainer.Result stopped;
        do {
            stopped = new Pretrainer(r, work, Progress.NONE).schedule(1, 1000).timeLimit(0).run();
        } while (stopped.stage().equals("vae"));
        assertEquals("diffusion", stopped.stage());
        // a stage stopped part-way, rerun with another recipe: refused before anything is done, naming the difference
        java.io.IOException otherRecipe = assertThrows(java.io.IOException.class, () -> new Pretrainer(r.withDecoderAdversarial(0.5).withDecoderCriticAlone(1),
                work, Progress.NONE).run());
        assertTrue(otherRecipe.getMessage().startsWith(work.resolve("checkpoint-diffusion.safetensors") + ": checkpoint of a run with another recipe "
                + "(decoderAdversarialWeight unset, now 0.5; decoderCriticAlone unset, now 1)"), otherRecipe.getMessage());
        // a critic that would never judge the decoder is refused before any run
        IllegalArgumentException neverJudged = assertThrows(IllegalArgumentException.class, () -> new Pretrainer(r.withDecoderAdversarial(0.5), tmp.resolve("never"),
                Progress.NONE).run());
        assertFalse(Files.exists(tmp.resolve("never").resolve(Pretrainer.ORIGIN)), "refused before the folder's record");
        assertTrue(neverJudged.getMessage().contains("learns alone for its first 300 steps, and the decoder stage has 3: the decoder would never learn from it"),
                neverJudged.getMessage());
        Files.delete(work.resolve("checkpoint-diffusion.safetensors")); // stopped before the diffusion stage's first checkpoint
        BaseModelRecipe wider = r.withVae(r.vaeChannels().stream().map(c -> 2 * c).toList(), r.latentChannels());
        java.io.IOException otherVae = assertThrows(java.io.IOException.class, () -> new Pretrainer(wider, work, Progress.NONE).run());
        assertTrue(otherVae.getMessage().contains("a VAE of other shapes than the recipe's"), otherVae.getMessage());
    }

    /**
     * A finished VAE or decoder stage rerun with another step count was used as it was (shapes alone were checked), so
     * the model went on as trained for the new count: refused now, naming the difference; the same recipe uses them.
     */
    @Test
    void aFinishedVaeOrDecoderIsNotPassedOffAsAnotherRecipes() throws Exception {
        BaseModelRecipe r = BaseModelRecipe.standard().quick(2, 2);
        Path work = tmp.resolve("finished-vae");
        Pretrainer.Result stopped;
        do {
            stopped = new Pretrainer(r, work, Progress.NONE).schedule(1000, 1000).timeLimit(0).run();
        } while (stopped.stage().equals("vae"));
        byte[] vae = Files.readAllBytes(work.resolve("vae").resolve(DiffusersExport.WEIGHTS));
        java.io.IOException longer = assertThrows(java.io.IOException.class, () -> new Pretrainer(r.withSteps(3, 2, 2), work, Progress.NONE).run());
        assertTrue(longer.getMessage().contains("its VAE stage finished with another recipe (vaeSteps 2, now 3)"), longer.getMessage());
        java.io.IOException beside = assertThrows(java.io.IOException.class, () -> new Pretrainer(r.withSteps(3, 2, 2), work, Progress.NONE).runDecoderStage());
        assertTrue(beside.getMessage().contains("vaeSteps 2, now 3"), beside.getMessage());
        assertArrayEquals(vae, Files.readAllBytes(work.resolve("vae").resolve(DiffusersExport.WEIGHTS)), "the VAE is left as it was");

        assertTrue(new Pretrainer(r, work, Progress.NONE).schedule(1000, 1000).runDecoderStage().finished());
        byte[] decoder = Files.readAllBytes(work.resolve("vae-decoder").resolve(DiffusersExport.WEIGHTS));
        BaseModelRecipe adversarial = r.withDecoderAdversarial(0.1).withDecoderCriticAlone(1);
        java.io.IOException critic = assertThrows(java.io.IOException.class, () -> new Pretrainer(adversarial, work, Progress.NONE).runDecoderStage());
        assertTrue(critic.getMessage().contains("its decoder stage finished with another recipe (decoderAdversarialWeight unset, now 0.1; decoderCriticAlone unset, now 1)"), critic.getMessage());
        List<String> logged = Files.readAllLines(work.resolve("losses.csv"));
        java.io.IOException whole = assertThrows(java.io.IOException.class, () -> new Pretrainer(r.withSteps(2, 2, 4), work, Progress.NONE).schedule(1000, 1000).run());
        assertTrue(whole.getMessage().contains("decoderSteps 2, now 4") && whole.getMessage().contains("remove " + work.resolve("vae-decoder") + "/ and "
                + work.resolve("decoder-recipe.json")), whole.getMessage());
        assertEquals(logged, Files.readAllLines(work.resolve("losses.csv")), "refused before the UNet trained a step");
        assertFalse(Files.exists(work.resolve("model")), "nothing exported");
        assertTrue(new Pretrainer(r, work, Progress.NONE).runDecoderStage().finished(), "the same recipe again");
        assertArrayEquals(decoder, Files.readAllBytes(work.resolve("vae-decoder").resolve(DiffusersExport.WEIGHTS)), "the decoder is left as it was");
    }

    /**
     * A decoder-only run beside a main run that asks for another decoder was found out only when the main run reached
     * its decoder stage, after the decoder-only run had trained: now the later of the two is refused at its start,
     * naming the difference, whichever of them it is; a refused run records nothing, and the record goes with the
     * decoder stage's end (then the finished decoder's own record speaks).
     */
    @Test
    void aDecoderOnlyRunAndTheMainRunAskingForOtherDecodersAreRefusedAtTheirStart() throws Exception {
        BaseModelRecipe r = BaseModelRecipe.standard().quick(2, 2), longer = r.withSteps(2, 2, 4);
        Path work = tmp.resolve("claims"), asked = work.resolve(DecoderClaim.FILE);
        Pretrainer.Result stopped;
        do {
            stopped = new Pretrainer(r, work, Progress.NONE).schedule(1000, 1000).timeLimit(0).run();
        } while (stopped.stage().equals("vae"));
        assertEquals("diffusion", stopped.stage(), "the main run is at its UNet, its decoder to come");
        String mainAsked = Files.readString(asked);

        List<String> logged = Files.readAllLines(work.resolve("losses.csv"));
        java.io.IOException beside = assertThrows(java.io.IOException.class, () -> new Pretrainer(longer, work, Progress.NONE).runDecoderStage());
        assertTrue(beside.getMessage().contains("the main run in this folder asked for another decoder (decoderSteps 2, now 4)")
                && beside.getMessage().contains("remove " + asked + " if"), beside.getMessage());
        assertEquals(logged, Files.readAllLines(work.resolve("losses.csv")), "no decoder step trained");
        assertFalse(Files.exists(work.resolve("vae-decoder")));
        assertEquals(mainAsked, Files.readString(asked), "a refused run records nothing");

        Pretrainer.Result besideStopped = new Pretrainer(r, work, Progress.NONE).schedule(1, 1000).timeLimit(0).runDecoderStage();
        assertFalse(besideStopped.finished(), "the decoder-only run with the main run's decoder stopped after a step");
        logged = Files.readAllLines(work.resolve("losses.csv"));
        java.io.IOException main = assertThrows(java.io.IOException.class, () -> new Pretrainer(longer, work, Progress.NONE).schedule(1000, 1000).run());
        assertTrue(main.getMessage().contains("a decoder-only run (--decoder-only) in this folder asked for another decoder (decoderSteps 2, now 4)")
                && main.getMessage().contains("and the decoder it began, " + work.resolve("checkpoint-decoder.safetensors")), main.getMessage());
        assertEquals(logged, Files.readAllLines(work.resolve("losses.csv")), "refused before the UNet trained a step");
        assertTrue(Files.readString(asked).contains("\"decoderSteps\" : 2") && !Files.readString(asked).contains("\"decoderSteps\" : 4"), "a refused run records nothing");

        Pretrainer.Result whole = new Pretrainer(r, work, Progress.NONE).schedule(1000, 1000).run();
        assertTrue(whole.finished());
        assertTrue(Files.readString(work.resolve("model").resolve("recipe.json")).contains("\"decoder_fine_tuned\" : true"), "the decoder installed");
        assertEquals(1, Files.readAllLines(work.resolve("losses.csv")).stream().filter(l -> l.startsWith("decoder,1,")).count(),
                "the main run went on from the decoder-only run's first step");
        assertFalse(Files.exists(asked), "the record goes with the decoder stage's end");
        // the decoder trained anew with more steps, as the finished decoder's refusal says to: no stale record stands in the way
        try (Stream<Path> files = Files.walk(work.resolve("vae-decoder"))) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        }
        Files.delete(work.resolve("decoder-recipe.json"));
        assertTrue(new Pretrainer(longer, work, Progress.NONE).schedule(1000, 1000).runDecoderStage().finished());
        assertEquals(4, BaseModelRecipe.recordedIn(work.resolve("model")).decoderSteps(), "the model installs it under its own recipe");
    }

    /**
     * A checkpoint resumed with another thread count or on another kind of CPU goes on, saying that its steps are no
     * longer bit for bit those of one run (they were silently not); one resumed as it was written says nothing.
     */
    @Test
    void aCheckpointComputedOtherwiseGoesOnSayingSo() throws Exception {
        BaseModelRecipe r = FIVE_VAE_STEPS;
        Path work = tmp.resolve("elsewhere"), checkpoint = stoppedAfterOneStep(work);
        assertEquals(TrainedWeights.computedOn(), Safetensors.open(checkpoint).metadata().get(TrainedWeights.COMPUTED_ON));
        List<String> said = new ArrayList<>();
        Progress listening = listening(said);
        assertEquals(2, new Pretrainer(r, work, listening).schedule(1, 1000).timeLimit(0).run().step());
        assertTrue(said.stream().noneMatch(m -> m.contains("bit for bit")), said.toString());

        Safetensors st = Safetensors.open(checkpoint);
        java.util.Map<String, String> metadata = new java.util.HashMap<>(st.metadata());
        metadata.put(TrainedWeights.COMPUTED_ON, "7 threads, amx");
        try (dev.perfusion.tensor.Scope s = dev.perfusion.tensor.Scope.inference()) {
            java.util.Map<String, org.bytedeco.pytorch.Tensor> tensors = new java.util.LinkedHashMap<>();
            for (String key : st.keys()) tensors.put(key, st.get(key));
            Safetensors.write(checkpoint, tensors, metadata, Safetensors.StoredType.F32);
        }
        said.clear();
        assertEquals(3, new Pretrainer(r, work, listening).schedule(1, 1000).timeLimit(0).run().step());
        assertTrue(said.stream().anyMatch(m -> m.contains(checkpoint + " was computed on 7 threads, amx, this run computes on " + TrainedWeights.computedOn())
                && m.contains("no longer bit for bit")), said.toString());
    }

    private static final BaseModelRecipe FIVE_VAE_STEPS = BaseModelRecipe.standard().quick(3, 3).withSteps(5, 3, 3);

    /** A run of {@link #FIVE_VAE_STEPS} in {@code work} stopped after its first step; its checkpoint. */
    private static Path stoppedAfterOneStep(Path work) throws Exception {
        assertEquals(1, new Pretrainer(FIVE_VAE_STEPS, work, Progress.NONE).schedule(1, 1000).timeLimit(0).run().step());
        return work.resolve("checkpoint-vae.safetensors");
    }

    /** A progress that keeps the messages said. */
    private static Progress listening(List<String> said) {
        return new Progress() {
            @Override public void update(String task, long done, long total, String detail) {}
            @Override public void message(String text) { said.add(text); }
        };
    }

    /**
     * The decoder's patch critic, with an optimizer of its own, was not in the stage's checkpoint: a resumed run's critic
     * started afresh (its hinge loss jumped back, and the decoder waited for it again). Now saved with the stage: a run
     * stopped after every step logs what an uninterrupted one does; a checkpoint from before says the critic starts afresh.
     */
    @Test
    void aDecoderStageResumedAgainstItsCriticGoesOnAsOneRun() throws Exception {
        // the critic alone for the first step, so that the decoder learns from it in steps 2 and 3, across the stops
        BaseModelRecipe r = BaseModelRecipe.standard().quick(2, 2).withSteps(2, 2, 3).withDecoderAdversarial(0.5).withDecoderCriticAlone(1);
        Path whole = tmp.resolve("critic-whole"), stopped = tmp.resolve("critic-stopped");
        assertTrue(new Pretrainer(r, whole, Progress.NONE).schedule(1, 1000).run().finished());
        Path later = tmp.resolve("critic-later");
        assertTrue(new Pretrainer(r.withDecoderCriticAlone(2), later, Progress.NONE).schedule(1, 1000).run().finished());
        assertFalse(java.util.Arrays.equals(Files.readAllBytes(whole.resolve("vae-decoder").resolve(DiffusersExport.WEIGHTS)),
                Files.readAllBytes(later.resolve("vae-decoder").resolve(DiffusersExport.WEIGHTS))), "the critic's judgement at step 2 moved the decoder");
        Pretrainer.Result last;
        do {
            last = new Pretrainer(r, stopped, Progress.NONE).schedule(1, 1000).timeLimit(0).run();
        } while (!last.finished());
        List<String> criticWhole = criticLines(whole), criticStopped = criticLines(stopped);
        assertEquals(3, criticWhole.size(), criticWhole.toString());
        assertEquals(criticWhole, criticStopped, "the critic's hinge loss, step by step");
        assertArrayEquals(Files.readAllBytes(whole.resolve("vae-decoder").resolve(DiffusersExport.WEIGHTS)),
                Files.readAllBytes(stopped.resolve("vae-decoder").resolve(DiffusersExport.WEIGHTS)));

        // a checkpoint written before the critic was kept: it goes on, saying so
        Path older = tmp.resolve("critic-older");
        do {
            last = new Pretrainer(r, older, Progress.NONE).schedule(1, 1000).timeLimit(0).run();
        } while (!last.stage().equals("decoder"));
        Path checkpoint = older.resolve("checkpoint-decoder.safetensors");
        Safetensors st = Safetensors.open(checkpoint);
        java.util.Map<String, org.bytedeco.pytorch.Tensor> kept = new java.util.LinkedHashMap<>();
        for (String k : st.keys()) if (!k.startsWith("beside.")) kept.put(k, st.get(k));
        assertTrue(kept.size() < st.keys().size(), "the critic is in the checkpoint");
        Safetensors.write(checkpoint, kept, st.metadata(), Safetensors.StoredType.F32);
        List<String> said = new ArrayList<>();
        assertTrue(new Pretrainer(r, older, listening(said)).schedule(1, 1000).run().finished());
        assertTrue(said.stream().anyMatch(m -> m.contains("before the stage kept what it learns beside its weights: the patch critic starts afresh")), said.toString());
    }

    /**
     * A diffusion stage begun with fewer steps than the recipe's warm-up (which is capped at them) and resumed with more
     * keeps the warm-up it began with: recomputed from the new count, it warmed up again from a fraction of the rate.
     */
    @Test
    void aWarmUpCappedAtFewStepsIsKeptWhenResumedWithMore() throws Exception {
        BaseModelRecipe few = BaseModelRecipe.standard().quick(1, 2), more = BaseModelRecipe.standard().quick(1, 8);
        assertEquals(2, few.warmupSteps());
        assertTrue(more.warmupSteps() > 2, "the recipe's own warm-up is longer than the first run's steps");
        Path work = tmp.resolve("warm");
        Pretrainer.Result stopped;
        do {
            stopped = new Pretrainer(few, work, Progress.NONE).schedule(1, 1000).timeLimit(0).run();
        } while (!stopped.stage().equals("diffusion"));
        assertEquals(1, stopped.step());
        List<String> said = new ArrayList<>();
        assertEquals(2, new Pretrainer(more, work, listening(said)).schedule(1, 1000).timeLimit(0).run().step());
        double lr = few.diffusionLr();
        String expected = String.format(java.util.Locale.ROOT, "note: the diffusion stage's run began for 2 steps, now 8: its learning rate's decay is stretched "
                + "over them from step 1, where it moves from %.3g to %.3g", lr * StageLoop.learningRateScale(1, 2, 2), lr * StageLoop.learningRateScale(1, 8, 2));
        assertTrue(said.contains(expected), said.toString());
        assertEquals("2", Safetensors.open(work.resolve("checkpoint-diffusion.safetensors")).metadata().get("warmup_steps"));
    }

    /** The critic's lines of a work folder's loss log: step and loss. */
    private static List<String> criticLines(Path work) throws Exception {
        return Files.readAllLines(work.resolve("losses.csv")).stream().filter(l -> l.startsWith(DecoderStage.CRITIC + ","))
                .map(l -> String.join(",", java.util.Arrays.asList(l.split(",")).subList(0, 3))).toList();
    }

    /**
     * A run resumed with more steps than it began with jumped its learning rate (its cosine decay recomputed over the new
     * total) without a word, and its logged loss started afresh from one batch: now said with the rates it moves between,
     * and the smoothed loss goes on from the checkpoint's.
     */
    @Test
    void moreStepsOnResumeSayHowTheRateMovesAndTheLossGoesOn() throws Exception {
        BaseModelRecipe r = FIVE_VAE_STEPS;
        Path work = tmp.resolve("longer"), checkpoint = stoppedAfterOneStep(work);
        java.util.Map<String, String> first = Safetensors.open(checkpoint).metadata();
        assertEquals("5", first.get("schedule_steps"));
        List<String> said = new ArrayList<>();
        Progress listening = listening(said);
        assertEquals(2, new Pretrainer(r.withSteps(8, 3, 3), work, listening).schedule(1, 1000).timeLimit(0).run().step());
        double lr = r.vaeLr();
        String expected = String.format(java.util.Locale.ROOT, "note: the vae stage's run began for 5 steps, now 8: its learning rate's decay is stretched "
                + "over them from step 1, where it moves from %.3g to %.3g", lr * StageLoop.learningRateScale(1, 5, 0), lr * StageLoop.learningRateScale(1, 8, 0));
        assertTrue(said.contains(expected), said.toString());
        java.util.Map<String, String> second = Safetensors.open(checkpoint).metadata();
        assertEquals("8", second.get("schedule_steps"));
        List<String> vaeLosses = Files.readAllLines(work.resolve("losses.csv")).stream().filter(l -> l.startsWith("vae,")).toList();
        double loss1 = Double.parseDouble(vaeLosses.get(0).split(",")[2]), loss2 = Double.parseDouble(vaeLosses.get(1).split(",")[2]);
        assertEquals(loss1, Double.parseDouble(first.get("smoothed_loss")), 1e-5);
        assertEquals(0.98 * loss1 + 0.02 * loss2, Double.parseDouble(second.get("smoothed_loss")), 1e-5, "smoothed on from the checkpoint's, not from one batch");

        said.clear();
        assertEquals(3, new Pretrainer(r.withSteps(8, 3, 3), work, listening).schedule(1, 1000).timeLimit(0).run().step());
        assertTrue(said.stream().noneMatch(m -> m.contains("decay is stretched")), "resumed as it began: nothing to say " + said);
    }

    /** Both stages for a few steps, stopped at a time limit, resumed, exported, and loaded like any SD folder. */
    @Test
    void stopsResumesAndExportsALoadableModel() throws Exception {
        BaseModelRecipe r = BaseModelRecipe.standard().quick(3, 3);
        Path work = tmp.resolve("work");
        Pretrainer.Result first = new Pretrainer(r, work, Progress.NONE).schedule(1, 1000).timeLimit(0).run();
        assertFalse(first.finished());
        assertEquals("vae", first.stage());
        assertEquals(1, first.step());
        assertTrue(Files.isRegularFile(work.resolve("checkpoint-vae.safetensors")));
        assertEquals("1", Safetensors.open(work.resolve("checkpoint-vae.safetensors")).metadata().get("step"));

        Pretrainer.Result done = new Pretrainer(r, work, Progress.NONE).schedule(1, 1000).run();
        assertTrue(done.finished(), "resumed run finishes");
        assertEquals("decoder", done.stage(), "the last stage fine-tunes the decoder");
        Path model = done.model();
        for (String f : List.of("model_index.json", "recipe.json", "tokenizer/vocab.json", "unet/diffusion_pytorch_model.safetensors",
                "text_encoder/model.safetensors", "vae/diffusion_pytorch_model.safetensors", "scheduler/scheduler_config.json")) {
            assertTrue(Files.isRegularFile(model.resolve(f)), f);
        }
        assertEquals("F16", Safetensors.open(model.resolve("unet/diffusion_pytorch_model.safetensors")).entries().values().iterator().next().dtype());
        for (String stage : List.of("vae", "diffusion", "decoder")) {
            assertFalse(Files.exists(work.resolve("checkpoint-" + stage + ".safetensors")), "checkpoints go once a stage is done");
        }
        List<String> log = Files.readAllLines(work.resolve("losses.csv"));
        assertEquals(1 + 3 + 3 + 3, log.size(), "one line per step of each stage: " + log);
        assertTrue(Files.readString(model.resolve("recipe.json")).contains("decoder_fine_tuned"));
        assertTrue(Files.isRegularFile(work.resolve("samples/step-00003.png")));

        StableDiffusion sd = StableDiffusion.load(model, ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float, Progress.NONE);
        assertEquals(64, sd.unet.config().sampleSize() * sd.vaeScaleFactor());
        assertEquals(32, sd.tokenizer.maxLength());
        assertTrue(sd.tokenizer.tokensOf("teddy").size() == 1);

        assertEquals(r, BaseModelRecipe.recordedIn(model), "recipe.json records the recipe as it was run");
        // the finished run asked for again trains nothing; more steps asked of it are refused, not quietly left untrained
        Pretrainer.Result again = new Pretrainer(r, work, Progress.NONE).schedule(1, 1000).run();
        assertTrue(again.finished() && Double.isNaN(again.loss()), "nothing trained: " + again);
        assertEquals(1 + 3 + 3 + 3, Files.readAllLines(work.resolve("losses.csv")).size());
        IllegalArgumentException finished = assertThrows(IllegalArgumentException.class,
                () -> new Pretrainer(r.withSteps(3, 5, 3), work, Progress.NONE).schedule(1, 1000).run());
        assertTrue(finished.getMessage().contains("its run is finished") && finished.getMessage().contains("diffusionSteps 3, now 5")
                && finished.getMessage().contains("--continue-from " + model), finished.getMessage());
        IllegalArgumentException misfit = assertThrows(IllegalArgumentException.class,
                () -> new Pretrainer(BaseModelRecipe.frozenText().quick(3, 2), tmp.resolve("misfit"), Progress.NONE).continueFrom(model));
        assertTrue(misfit.getMessage().contains("text encoder 128x4x4") && misfit.getMessage().contains("text encoder 128x2x4"), misfit.getMessage());

        // the folder of a run from scratch does not go on as a continuation of another model (its parts would be mixed)
        java.io.IOException otherStart = assertThrows(java.io.IOException.class,
                () -> new Pretrainer(r.withSteps(3, 5, 3), work, Progress.NONE).continueFrom(model).run());
        assertTrue(otherStart.getMessage().contains(work + " holds a run started otherwise (continued_from null, now"), otherStart.getMessage());

        // more steps from the exported model: its tokenizer and VAE are kept, the UNet starts from its weights
        Path more = tmp.resolve("more");
        Pretrainer.Result continued = new Pretrainer(r.withSteps(3, 2, 3), more, Progress.NONE).schedule(1, 1000).continueFrom(model).run();
        assertTrue(continued.finished());
        List<String> moreLog = Files.readAllLines(more.resolve("losses.csv"));
        assertEquals(1 + 2, moreLog.size(), "only the diffusion stage runs: " + moreLog);
        assertTrue(moreLog.get(1).startsWith("diffusion,"), moreLog.toString());
        assertArrayEquals(Files.readAllBytes(model.resolve("vae/diffusion_pytorch_model.safetensors")),
                Files.readAllBytes(continued.model().resolve("vae/diffusion_pytorch_model.safetensors")), "the VAE is kept");
        assertEquals(Files.readString(model.resolve("tokenizer/vocab.json")), Files.readString(continued.model().resolve("tokenizer/vocab.json")));
        assertTrue(Files.readString(continued.model().resolve("recipe.json")).contains("continued_from"));
        assertEquals(0, Pretrainer.continuations(model.resolve("recipe.json")));
        assertEquals(1, Pretrainer.continuations(continued.model().resolve("recipe.json")), "a second continuation would draw new pictures");
        Safetensors before = Safetensors.open(model.resolve("unet/diffusion_pytorch_model.safetensors"));
        Safetensors after = Safetensors.open(continued.model().resolve("unet/diffusion_pytorch_model.safetensors"));
        String name = "conv_in.weight";
        double moved = Ops.item(after.get(name).sub(before.get(name)).abs().max());
        assertTrue(moved > 0 && moved < 0.01, "two small steps from the exported weights, not a new start: moved " + moved);
        assertThrows(java.io.IOException.class, () -> new Pretrainer(r, tmp.resolve("x"), Progress.NONE).continueFrom(tmp));

        // a deeper UNet grown from the model's (UNetGrowthTest: it computes what the model's did) trains on and loads
        Pretrainer.Result grown = new Pretrainer(r.withSteps(3, 1, 3).withUnetLayersPerBlock(2), tmp.resolve("deeper"), Progress.NONE)
                .schedule(1, 1000).continueFrom(model).run();
        assertTrue(grown.finished());
        assertEquals(2, BaseModelRecipe.recordedIn(grown.model()).unetLayersPerBlock());
        assertEquals(2, StableDiffusion.load(grown.model(), ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float, Progress.NONE)
                .unet.config().layersPerBlock());
        IllegalArgumentException shallower = assertThrows(IllegalArgumentException.class,
                () -> new Pretrainer(r, tmp.resolve("shallower"), Progress.NONE).continueFrom(grown.model()));
        assertTrue(shallower.getMessage().contains("UNet [32, 64, 128]x2") && shallower.getMessage().contains("may grow"), shallower.getMessage());

        // a wider UNet widened from the model's (UNetWideningTest: it computes what the model's did) trains on and loads
        BaseModelRecipe twice = r.withSteps(3, 1, 3).withUnetChannels(List.of(64, 128, 256));
        Pretrainer.Result widened = new Pretrainer(twice, tmp.resolve("wider"), Progress.NONE).schedule(1, 1000).continueFrom(model).run();
        assertTrue(widened.finished());
        assertEquals(List.of(64, 128, 256), StableDiffusion.load(widened.model(), ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float,
                Progress.NONE).unet.config().blockOutChannels());
        for (List<Integer> width : List.of(List.of(64, 128, 128), List.of(48, 96, 192))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new Pretrainer(r.withUnetChannels(width), tmp.resolve("misfit-width"), Progress.NONE).continueFrom(model));
            assertTrue(e.getMessage().contains("the same whole multiple") && e.getMessage().contains("[64, 128, 256]"), e.getMessage());
        }
        IllegalArgumentException both = assertThrows(IllegalArgumentException.class,
                () -> new Pretrainer(twice.withUnetLayersPerBlock(2), tmp.resolve("both"), Progress.NONE).continueFrom(model));
        assertTrue(both.getMessage().contains("in a run of its own"), both.getMessage());

        // a level added at the bottom of the model's UNet (UNetLevelAddedTest: every old weight in its place) trains on
        BaseModelRecipe fourLevels = r.withSteps(3, 1, 3).withUnetChannels(List.of(32, 64, 128, 128));
        Pretrainer.Result levelAdded = new Pretrainer(fourLevels, tmp.resolve("four-grown"), Progress.NONE).schedule(1, 1000).continueFrom(model).run();
        double warm = Ops.item(Safetensors.open(levelAdded.model().resolve("unet/diffusion_pytorch_model.safetensors")).get(name).sub(before.get(name)).abs().max());
        assertTrue(warm < 0.01, "a step from the model's weights: moved " + warm);
        IllegalArgumentException notRepeated = assertThrows(IllegalArgumentException.class,
                () -> new Pretrainer(r.withUnetChannels(List.of(32, 64, 128, 256)), tmp.resolve("four-misfit"), Progress.NONE).continueFrom(model));
        assertTrue(notRepeated.getMessage().contains("may gain a level (its deepest repeated)"), notRepeated.getMessage());
        // or a new UNet with a level more, from scratch, on the model's tokenizer, text encoder and VAE
        Pretrainer.Result fresh = new Pretrainer(fourLevels, tmp.resolve("four"), Progress.NONE).schedule(1, 1000).continueFrom(model, true).run();
        assertTrue(fresh.finished());
        assertEquals(List.of(32, 64, 128, 128), StableDiffusion.load(fresh.model(), ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float,
                Progress.NONE).unet.config().blockOutChannels());
        assertEquals(List.of(32, 64, 128, 128), BaseModelRecipe.recordedIn(fresh.model()).unetChannels());
        for (String kept : List.of("vae/diffusion_pytorch_model.safetensors", "tokenizer/vocab.json")) {
            assertArrayEquals(Files.readAllBytes(model.resolve(kept)), Files.readAllBytes(fresh.model().resolve(kept)), kept + " is kept");
        }
        String words = "text_model.embeddings.token_embedding.weight"; // this recipe's text encoder learns on, from the model's
        double textMoved = Ops.item(Safetensors.open(fresh.model().resolve("text_encoder/model.safetensors")).get(words)
                .sub(Safetensors.open(model.resolve("text_encoder/model.safetensors")).get(words)).abs().max());
        assertTrue(textMoved < 0.01, "the text encoder goes on from the model's: moved " + textMoved);
        assertEquals(1 + 1, Files.readAllLines(tmp.resolve("four").resolve("losses.csv")).size(), "only the diffusion stage runs");

        // larger pictures: the model's VAE and UNet at 128x128, whose latents grow to 32x32; or a new VAE of four levels
        // that keeps them 16x16 (SD's factor 8)
        Pretrainer.Result larger = new Pretrainer(r.withSteps(2, 1, 2).withImageSize(128), tmp.resolve("larger"), Progress.NONE).schedule(1, 1000)
                .continueFrom(model).run();
        assertTrue(larger.finished());
        StableDiffusion at128 = StableDiffusion.load(larger.model(), ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float, Progress.NONE);
        assertEquals(32, at128.unet.config().sampleSize());
        assertEquals(128, at128.unet.config().sampleSize() * at128.vaeScaleFactor());
        assertArrayEquals(Files.readAllBytes(model.resolve("vae/diffusion_pytorch_model.safetensors")),
                Files.readAllBytes(larger.model().resolve("vae/diffusion_pytorch_model.safetensors")), "the model's VAE is kept");
        BaseModelRecipe factor8 = r.withSteps(2, 1, 2).withVae(List.of(32, 64, 64, 64), r.latentChannels()).withImageSize(128);
        Pretrainer.Result sdLike = new Pretrainer(factor8, tmp.resolve("factor8"), Progress.NONE).schedule(1, 1000).continueFrom(model).run();
        assertTrue(sdLike.finished());
        StableDiffusion eight8 = StableDiffusion.load(sdLike.model(), ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float, Progress.NONE);
        assertEquals(16, eight8.unet.config().sampleSize());
        assertEquals(8, eight8.vaeScaleFactor());
        assertEquals(128, BaseModelRecipe.recordedIn(sdLike.model()).imageSize());
        IllegalArgumentException latentsMove = assertThrows(IllegalArgumentException.class, () -> new Pretrainer(r.withVae(r.vaeChannels(), 8)
                .withImageSize(128), tmp.resolve("latents-move"), Progress.NONE).continueFrom(model));
        assertTrue(latentsMove.getMessage().contains("must keep its 16x16 latents"), latentsMove.getMessage());

        // the model's decoder alone in the folder of a run that continued it with its VAE kept: that folder's decoder is
        // the model's, copied, and its model/ the run's own; taken for a trained decoder, the model replaced the run's
        byte[] largerUnet = Files.readAllBytes(larger.model().resolve("unet/diffusion_pytorch_model.safetensors"));
        java.io.IOException notHere = assertThrows(java.io.IOException.class, () -> new Pretrainer(r.withSteps(2, 1, 2).withImageSize(128), tmp.resolve("larger"),
                Progress.NONE).schedule(1, 1000).continueFrom(model).runDecoderStage());
        assertTrue(notHere.getMessage().contains("needs a work folder of its own"), notHere.getMessage());
        // nor a decoder alone started otherwise than the folder's run (from scratch, in a continued run's folder)
        java.io.IOException otherwise = assertThrows(java.io.IOException.class, () -> new Pretrainer(r.withSteps(2, 1, 2).withImageSize(128), tmp.resolve("larger"),
                Progress.NONE).schedule(1, 1000).runDecoderStage());
        assertTrue(otherwise.getMessage().contains("holds a run started otherwise (continued_from \"" + model.toAbsolutePath().normalize() + "\", now null"), otherwise.getMessage());
        assertArrayEquals(largerUnet, Files.readAllBytes(larger.model().resolve("unet/diffusion_pytorch_model.safetensors")), "the run's model is kept");

        // a critic that would never judge the decoder: refused before the model's VAE is copied in
        Path neverJudged = tmp.resolve("never-judged");
        IllegalArgumentException never = assertThrows(IllegalArgumentException.class, () -> new Pretrainer(r.withSteps(3, 2, 3).withDecoderAdversarial(0.5),
                neverJudged, Progress.NONE).schedule(1, 1000).continueFrom(model).runDecoderStage());
        assertTrue(never.getMessage().contains("the decoder would never learn from it"), never.getMessage());
        assertFalse(Files.exists(neverJudged.resolve("vae")), "nothing copied in");
        // the model's decoder alone trained on, against a patch critic: whole batches, the critic's loss logged beside L1
        Path critic = tmp.resolve("critic");
        Pretrainer.Result sharper = new Pretrainer(r.withSteps(3, 2, 3).withDecoderAdversarial(0.5).withDecoderCriticAlone(1), critic, Progress.NONE).schedule(1, 1000)
                .continueFrom(model).runDecoderStage();
        assertTrue(sharper.finished());
        List<String> criticLog = Files.readAllLines(critic.resolve("losses.csv")).stream().skip(1).map(l -> l.substring(0, l.indexOf(','))).toList();
        assertEquals(List.of("decoder", "critic", "decoder", "critic", "decoder", "critic"), criticLog);
        assertTrue(Files.isRegularFile(critic.resolve("vae-decoder/diffusion_pytorch_model.safetensors")));
        assertArrayEquals(Files.readAllBytes(model.resolve("vae/diffusion_pytorch_model.safetensors")),
                Files.readAllBytes(critic.resolve("vae/diffusion_pytorch_model.safetensors")), "it starts from the model's VAE");
        // the result is the model with the new decoder: every other part as it was, the encoder too
        assertEquals(critic.resolve("model"), sharper.model());
        for (String part : List.of("unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors", "tokenizer/vocab.json", "model_index.json")) {
            assertArrayEquals(Files.readAllBytes(model.resolve(part)), Files.readAllBytes(sharper.model().resolve(part)), part);
        }
        Safetensors oldVae = Safetensors.open(model.resolve("vae/diffusion_pytorch_model.safetensors"));
        Safetensors newVae = Safetensors.open(sharper.model().resolve("vae/diffusion_pytorch_model.safetensors"));
        assertEquals(0.0, Ops.item(newVae.get("encoder.conv_in.weight").sub(oldVae.get("encoder.conv_in.weight")).abs().max()), "the encoder is kept");
        assertTrue(Ops.item(newVae.get("decoder.conv_out.weight").sub(oldVae.get("decoder.conv_out.weight")).abs().max()) > 0, "the decoder learned");
        assertEquals(0.5, BaseModelRecipe.recordedIn(sharper.model()).decoderAdversarialWeight());
        assertTrue(Files.readString(sharper.model().resolve("recipe.json")).contains("continued_from"));
        assertEquals(1, Pretrainer.continuations(sharper.model().resolve("recipe.json")));
        StableDiffusion.load(sharper.model(), ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float, Progress.NONE);
        // and the other way: a run that trains the UNet, in the decoder-only run's folder, took its model for its own
        java.io.IOException notAUnet = assertThrows(java.io.IOException.class, () -> new Pretrainer(r.withSteps(3, 2, 3).withDecoderAdversarial(0.5).withDecoderCriticAlone(1),
                critic, Progress.NONE).schedule(1, 1000).continueFrom(model).run());
        assertTrue(notAUnet.getMessage().contains("holds a model made by --decoder-only"), notAUnet.getMessage());

        // a new VAE of more latent channels under the model's UNet: the UNet keeps its weights but for its latent layers
        Path relatentWork = tmp.resolve("new-vae");
        BaseModelRecipe eight = r.withSteps(2, 2, 2).withVae(r.vaeChannels(), 8);
        Pretrainer.Result relatent = new Pretrainer(eight, relatentWork, Progress.NONE).schedule(1, 1000).continueFrom(model).run();
        assertTrue(relatent.finished());
        List<String> newVaeStages = Files.readAllLines(relatentWork.resolve("losses.csv")).stream().skip(1).map(l -> l.substring(0, l.indexOf(','))).distinct().toList();
        assertEquals(List.of("vae", "diffusion", "decoder"), newVaeStages, "the new VAE, the UNet on its latents, then its decoder");
        Safetensors unetBefore = Safetensors.open(model.resolve("unet/diffusion_pytorch_model.safetensors"));
        Safetensors unetAfter = Safetensors.open(relatent.model().resolve("unet/diffusion_pytorch_model.safetensors"));
        assertArrayEquals(new long[] {32, 8, 3, 3}, unetAfter.shape("conv_in.weight"), "the UNet reads 8 latent channels");
        assertArrayEquals(new long[] {8, 32, 3, 3}, unetAfter.shape("conv_out.weight"));
        String inner = "mid_block.resnets.0.conv1.weight";
        double innerMoved = Ops.item(unetAfter.get(inner).sub(unetBefore.get(inner)).abs().max());
        assertTrue(innerMoved > 0 && innerMoved < 0.01, "the layers between start from the model's: moved " + innerMoved);
        assertEquals(8, BaseModelRecipe.recordedIn(relatent.model()).latentChannels());
        assertTrue(Files.readString(relatent.model().resolve("recipe.json")).contains("a new one, trained from scratch"));
        assertEquals(8, StableDiffusion.load(relatent.model(), ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float, Progress.NONE)
                .unet.config().inChannels());
        IllegalArgumentException smaller = assertThrows(IllegalArgumentException.class,
                () -> new Pretrainer(r.withVae(List.of(32, 64), 4), tmp.resolve("smaller"), Progress.NONE).continueFrom(model));
        assertTrue(smaller.getMessage().contains("must keep its 16x16 latents"), smaller.getMessage());
        IllegalArgumentException notFurther = assertThrows(IllegalArgumentException.class,
                () -> new Pretrainer(eight, tmp.resolve("further"), Progress.NONE).continueFrom(model).trainVaeFurther());
        assertTrue(notFurther.getMessage().contains("trained anew"), notFurther.getMessage());

        // the VAE trained further too: from the model's weights, its decoder after it, then the UNet on the moved latents
        Path vaeToo = tmp.resolve("vae-too");
        Pretrainer.Result further = new Pretrainer(r.withSteps(2, 2, 2), vaeToo, Progress.NONE).schedule(1, 1000).continueFrom(model).trainVaeFurther().run();
        assertTrue(further.finished());
        List<String> stages = Files.readAllLines(vaeToo.resolve("losses.csv")).stream().skip(1).map(l -> l.substring(0, l.indexOf(','))).distinct().toList();
        assertEquals(List.of("vae", "diffusion", "decoder"), stages, "the VAE, the UNet on its latents, then its decoder");
        Safetensors vaeBefore = Safetensors.open(model.resolve("vae/diffusion_pytorch_model.safetensors"));
        Safetensors vaeAfter = Safetensors.open(further.model().resolve("vae/diffusion_pytorch_model.safetensors"));
        String encoderWeight = "encoder.conv_in.weight";
        double vaeMoved = Ops.item(vaeAfter.get(encoderWeight).sub(vaeBefore.get(encoderWeight)).abs().max());
        assertTrue(vaeMoved > 0 && vaeMoved < 0.01, "a few warm-up steps from the model's VAE, not a new one: moved " + vaeMoved);
        assertTrue(Files.readString(further.model().resolve("recipe.json")).contains("trained further"), "the record says the VAE moved");
        assertThrows(IllegalStateException.class, () -> new Pretrainer(r, tmp.resolve("y"), Progress.NONE).trainVaeFurther());
    }
}
