package dev.perfusion.pretrain;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.perfusion.io.Safetensors;
import dev.perfusion.io.layout.ModelSource;
import dev.perfusion.nn.Param;
import dev.perfusion.nn.Weights;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.text.ClipTextConfig;
import dev.perfusion.text.ClipTextModel;
import dev.perfusion.text.ClipTextModelWithProjection;
import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.util.Progress;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class ContrastiveStageTest {
    @TempDir Path tmp;

    /** A small text tower, so that the tests stay cheap; the recipe's other sizes as shipped. */
    private static BaseModelRecipe tiny(int vae, int steps) {
        return BaseModelRecipe.frozenText().withText(32, 1, 2).quick(vae, steps);
    }

    @Test
    void todaysRecipeRecordsNoContrastiveStage() {
        String json = new ObjectMapper().valueToTree(BaseModelRecipe.standard()).toString();
        assertFalse(json.contains("contrastive"), json);
        assertFalse(BaseModelRecipe.standard().frozenTextEncoder());
        assertTrue(BaseModelRecipe.named("frozen-text").frozenTextEncoder());
        assertTrue(new ObjectMapper().valueToTree(BaseModelRecipe.frozenText()).toString().contains("\"contrastive\":{\"steps\""));
    }

    /** Two pictures, two captions, matched embeddings: each direction's cross entropy is log(1 + e^-scale). */
    @Test
    void lossIsClipsSymmetricInfoNceWithAClampedScale() {
        ContrastiveLoss loss = new ContrastiveLoss();
        loss.initialise();
        try (Scope s = Scope.inference()) {
            Tensor e = Ops.fromFloats(new float[] {3, 0, 0, 0.5f}, 2, 2); // normalised to the identity
            double scale = 1 / 0.07;
            assertEquals(Math.log1p(Math.exp(-scale)), Ops.item(loss.forward(e, e)), 1e-6);
            // swapped captions: every picture prefers the wrong one
            Tensor swapped = Ops.fromFloats(new float[] {0, 1, 1, 0}, 2, 2);
            assertEquals(Math.log1p(Math.exp(scale)), Ops.item(loss.forward(swapped, e)), 1e-4);
            loss.logitScale.set(Ops.fromFloats(new float[] {(float) Math.log(1000)}, 1));
            assertEquals(100, loss.scale(), 1e-9);
            assertEquals(Math.log1p(Math.exp(100)), Ops.item(loss.forward(swapped, e)), 1e-3);
        }
    }

    /** Hard negatives are wrong answers for every picture: the positives repeated double the picture-to-caption partition function. */
    @Test
    void swappedSideNegativesAreExtraWrongAnswersForThePictures() {
        ContrastiveLoss loss = new ContrastiveLoss();
        loss.initialise();
        try (Scope s = Scope.inference()) {
            Tensor e = Ops.fromFloats(new float[] {3, 0, 0, 0.5f}, 2, 2);
            double scale = 1 / 0.07, pair = Math.log1p(Math.exp(-scale));
            assertEquals((Math.log(2) + pair + pair) / 2, Ops.item(loss.forward(e, e, e)), 1e-6);
            assertEquals(pair, Ops.item(loss.forward(e, e, null)), 1e-6);
        }
        assertEquals(List.of("a red car on the right and a cat on the left on the grass", "a dog on the left in the snow"),
                ContrastiveStage.sidesSwapped(List.of("a red car on the left and a cat on the right on the grass", "a car next to a dog",
                        "a dog on the right in the snow", "")));
    }

    /**
     * An accessory negative is its caption with another accessory the same object can wear, the same colour; a caption
     * without one gives none; over the steps every other wearable accessory comes up.
     */
    @Test
    void accessoryNegativesNameAnotherAccessoryTheObjectCanWear() {
        String teddy = "a small spotted brown teddy with a blue bow on the beach";
        List<String> negatives = ContrastiveStage.accessoriesSwapped(List.of(teddy, "a red car next to a dog", "a car with a green roof box at night"), 0);
        assertEquals(2, negatives.size(), negatives.toString());
        assertTrue(negatives.get(0).matches("a small spotted brown teddy with a blue (hat|scarf|collar) on the beach"), negatives.get(0));
        assertEquals("a car with a green flag at night", negatives.get(1), "a car wears a roof box or a flag");
        java.util.Set<String> seen = new java.util.TreeSet<>();
        for (int step = 0; step < 12; step++) seen.add(ContrastiveStage.accessoriesSwapped(List.of(teddy), step).get(0).split(" ")[8]);
        assertEquals(java.util.Set.of("collar", "hat", "scarf"), seen);
        BaseModelRecipe on = BaseModelRecipe.frozenText().withContrastive(BaseModelRecipe.frozenText().contrastive().withAccessoryNegatives(true));
        assertTrue(on.contrastive().accessoryNegatives());
        assertFalse(BaseModelRecipe.frozenText().contrastive().accessoryNegatives(), "off in the shipped recipe");
    }

    /**
     * A deeper image tower: its residual blocks sit after each halving under {@code blocks.i.resnets.j}, its config
     * round-trips (and says nothing of them when there are none), and each block counts in the output.
     */
    @Test
    void imageTowerLayersAddResidualBlocksAfterEachHalving() throws Exception {
        assertEquals(0, BaseModelRecipe.frozenText().imageTowerConfig().layersPerBlock(), "the shipped towers have none");
        assertFalse(BaseModelRecipe.frozenText().imageTowerConfig().toJson().has("layers_per_block"));
        assertFalse(new ObjectMapper().valueToTree(BaseModelRecipe.frozenText()).toString().contains("imageLayers"), "recorded only when set");
        BaseModelRecipe deep = BaseModelRecipe.frozenText().withContrastive(BaseModelRecipe.frozenText().contrastive().withImageLayers(2));
        ImageTower.Config config = deep.imageTowerConfig();
        assertEquals(2, config.layersPerBlock());
        ImageTower tower = new ImageTower(config);
        Weights.initRandom(tower, 5);
        java.util.Set<String> names = tower.namedParameters().keySet();
        for (int level = 0; level < 3; level++) {
            for (int layer = 0; layer < 2; layer++) assertTrue(names.contains("blocks." + level + ".resnets." + layer + ".conv2.weight"), names.toString());
        }
        assertFalse(names.contains("blocks.0.resnets.2.conv1.weight"));
        Path folder = tmp.resolve("deep-tower");
        Files.createDirectories(folder);
        Files.writeString(folder.resolve("config.json"), config.toJson().toString());
        assertEquals(config, ImageTower.Config.load(folder));
        try (Scope s = Scope.inference()) {
            Tensor pictures = torch.randn(2, 3, 64, 64);
            Tensor before = tower.imageEmbeds(pictures);
            assertArrayEquals(new long[] {2, 128}, Ops.shape(before));
            Tensor weight = tower.namedParameters().get("blocks.2.resnets.1.conv2.weight").t();
            weight.add_(torch.randn(weight.sizes()).mul(new org.bytedeco.pytorch.Scalar(0.1)));
            assertTrue(Ops.item(Ops.sub(before, tower.imageEmbeds(pictures)).abs().max()) > 1e-3, "the last residual block counts");
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BaseModelRecipe.frozenText().contrastive().withImageLayers(-1));
        assertEquals("image tower layers -1: expected at least 0", e.getMessage());
    }

    /** The attention pool reads where things are: its output moves with one position's embedding; its config round-trips. */
    @Test
    void attentionPooledImageTowerSeesPositions() throws Exception {
        BaseModelRecipe recipe = BaseModelRecipe.frozenText().withContrastive(BaseModelRecipe.frozenText().contrastive().withAttentionPool(true));
        ImageTower.Config config = recipe.imageTowerConfig();
        assertEquals(8, config.attentionPoolSide(), "64 pixels halved by three blocks");
        assertEquals(0, BaseModelRecipe.frozenText().imageTowerConfig().attentionPoolSide(), "mean pooling, as shipped");
        assertFalse(BaseModelRecipe.frozenText().imageTowerConfig().toJson().has("attention_pool_side"));
        ImageTower tower = new ImageTower(config);
        Weights.initRandom(tower, 3);
        Param positions = tower.namedParameters().get("attention_pool.positional_embedding");
        assertArrayEquals(new long[] {65, 128}, positions.shape(), "the mean and 8 x 8 pixels");
        DiffusersExport.writeComponent(tmp.resolve("tower"), config.toJson(), "model.safetensors", tower, Safetensors.StoredType.F32);
        ImageTower loaded = ImageTower.load(tmp.resolve("tower"));
        assertEquals(config, loaded.config());
        try (Scope s = Scope.inference()) {
            Tensor pictures = torch.randn(2, 3, 64, 64);
            Tensor before = tower.imageEmbeds(pictures);
            assertArrayEquals(new long[] {2, 128}, Ops.shape(before));
            assertTrue(Ops.item(Ops.sub(before, loaded.imageEmbeds(pictures)).abs().max()) < 1e-5, "the saved tower computes the same");
            positions.t().select(0, 20).add_(torch.ones(128).mul(new org.bytedeco.pytorch.Scalar(3.0)));
            assertTrue(Ops.item(Ops.sub(before, tower.imageEmbeds(pictures)).abs().max()) > 1e-3, "one pixel's position embedding counts");
        }
    }

    @Test
    void theContrastiveOptionsAreRecordedOnlyWhenOn() throws Exception {
        ObjectMapper json = new ObjectMapper();
        assertFalse(json.valueToTree(BaseModelRecipe.frozenText()).toString().contains("swappedSideNegatives"), "the shipped recipe's JSON as before");
        BaseModelRecipe on = BaseModelRecipe.frozenText().withContrastive(BaseModelRecipe.frozenText().contrastive().withSwappedSideNegatives(true));
        assertTrue(json.valueToTree(on).toString().contains("\"swappedSideNegatives\":true"));
        Path model = tmp.resolve("m");
        Files.createDirectories(model);
        Files.writeString(model.resolve("recipe.json"), "{\"recipe\": " + json.writeValueAsString(on) + "}");
        assertEquals(on, BaseModelRecipe.recordedIn(model));
        assertFalse(BaseModelRecipe.recordedIn(dev.perfusion.world.Bundled.model()).contrastive().swappedSideNegatives(), "a recipe without the field");
        assertFalse(json.valueToTree(BaseModelRecipe.frozenText()).toString().contains("accessoryNegatives"), "recorded only when on");
        BaseModelRecipe accessories = BaseModelRecipe.frozenText().withContrastive(BaseModelRecipe.frozenText().contrastive().withAccessoryNegatives(true));
        Files.writeString(model.resolve("recipe.json"), "{\"recipe\": " + json.writeValueAsString(accessories) + "}");
        assertEquals(accessories, BaseModelRecipe.recordedIn(model));
        assertFalse(json.valueToTree(BaseModelRecipe.frozenText()).toString().contains("sideWordWeight"));
        assertNull(BaseModelRecipe.recordedIn(dev.perfusion.world.Bundled.model()).contrastive().sideWordWeight(), "a recipe without the field");
        BaseModelRecipe free = BaseModelRecipe.frozenText().withContrastive(BaseModelRecipe.frozenText().contrastive().withSideWordWeight(0.0));
        Files.writeString(model.resolve("recipe.json"), "{\"recipe\": " + json.writeValueAsString(free) + "}");
        assertEquals(0.0, BaseModelRecipe.recordedIn(model).contrastive().sideWordWeight());
        assertTrue(BaseModelRecipe.recordedIn(dev.perfusion.world.Bundled.model()).contrastive().ownTokenPadding(), "the shipped model's");
        BaseModelRecipe padding = BaseModelRecipe.frozenText();
        assertTrue(padding.contrastive().ownTokenPadding(), "the frozen-text recipe's, as shipped");
        String withField = json.writeValueAsString(padding);
        assertTrue(withField.contains("\"ownTokenPadding\":true"), withField);
        Files.writeString(model.resolve("recipe.json"), "{\"recipe\": " + withField.replace(",\"ownTokenPadding\":true", "") + "}");
        assertFalse(BaseModelRecipe.recordedIn(model).contrastive().ownTokenPadding(), "a recipe from before the option");
        BaseModelRecipe off = padding.withContrastive(padding.contrastive().withOwnTokenPadding(false));
        assertFalse(json.writeValueAsString(off).contains("ownTokenPadding"), "recorded only when on");
    }

    /** text_embeds = text_projection(last hidden state at the first EOS), as transformers' CLIPTextModelWithProjection. */
    @Test
    void textTowerPoolsAtTheFirstEosThroughABiasFreeProjection() {
        ClipTextConfig config = new ClipTextConfig(20, 16, 32, 2, 2, 8, "quick_gelu", 1e-5, 18, 19, 19, 12);
        ClipTextModelWithProjection tower = ClipTextModelWithProjection.create(config);
        Weights.initRandom(tower, 7);
        assertEquals(List.of(12L, 16L), List.of(tower.namedParameters().get("text_projection.weight").shape()[0],
                tower.namedParameters().get("text_projection.weight").shape()[1]));
        assertFalse(tower.namedParameters().containsKey("text_projection.bias"));
        assertSame(tower.namedParameters().get("text_model.embeddings.token_embedding.weight"),
                tower.textModel().namedParameters().get("text_model.embeddings.token_embedding.weight"), "one set of weights");
        try (Scope s = Scope.inference()) {
            Tensor ids = Ops.fromLongs(new long[] {18, 3, 4, 19, 19, 19, 19, 19, 18, 5, 6, 7, 8, 19, 19, 19}, 2, 8);
            Tensor hidden = tower.textModel().encode(ids);
            Tensor w = tower.namedParameters().get("text_projection.weight").t();
            Tensor expected = Ops.stack(List.of(Ops.matmul(w, hidden.select(0, 0).select(0, 3)), Ops.matmul(w, hidden.select(0, 1).select(0, 5))), 0);
            assertEquals(0, Ops.maxAbsDiff(expected, tower.textEmbeds(ids)), 1e-5);
        }
    }

    /**
     * The own-token objective: cross-entropy of each position's own id under logits hidden · Eᵀ, over BOS and the words
     * only. With E the identity, a position whose hidden state is 10 at its own token costs log(1 + 2e^-10), one at
     * another token 10 + log(1 + 2e^-10). EOS and padding, whatever they hold, cost nothing.
     */
    @Test
    void ownTokenLossIsTheCrossEntropyOfEachWordsOwnTokenBeforeEos() {
        try (Scope s = Scope.inference()) {
            Tensor embedding = torch.eye(3);
            Tensor ids = Ops.fromLongs(new long[] {0, 1, 2, 2, 0, 1, 1, 2}, 2, 4);  // BOS, word, EOS, padding / BOS, word, word, EOS
            Tensor hidden = Ops.fromFloats(new float[] {
                    10, 0, 0, 0, 10, 0, -50, 7, 3, 1, 2, 3,      // right, right, (EOS: anything), (padding: anything)
                    10, 0, 0, 10, 0, 0, 0, 10, 0, 9, 9, 9}, 2, 4, 3);   // right, wrong (says token 0), right, (EOS)
            Tensor own = OwnTokenLoss.own(OwnTokenLoss.logProbabilities(hidden, embedding), ids);
            double right = Math.log1p(2 * Math.exp(-10));  // -log softmax([10, 0, 0])[0]
            double wrong = 10 + Math.log1p(2 * Math.exp(-10));  // -log softmax([10, 0, 0])[1]
            assertEquals((4 * right + wrong) / 5, Ops.item(OwnTokenLoss.words(own, ids, 2, 1)), 1e-5);
            // token 1 left free (as --side-word-weight 0 leaves "left" and "right"): only the two BOS positions count,
            // over all five positions
            assertEquals(2 * right / 5, Ops.item(OwnTokenLoss.words(own, ids, 2, 0, 1)), 1e-5);
            // token 1 at a quarter of the weight
            assertEquals((2 * right + 0.25 * (2 * right + wrong)) / 5, Ops.item(OwnTokenLoss.words(own, ids, 2, 0.25, 1)), 1e-5);
            // the padding term: only row 0's last position (EOS as padding, as SD 1.x pads), whose hidden state is
            // [1, 2, 3] at its own token 2; the first EOS of each row is not padding
            assertEquals(Math.log1p(Math.exp(-1) + Math.exp(-2)), Ops.item(OwnTokenLoss.padding(own, ids, 2)), 1e-5);
        }
    }

    /**
     * The colour-binding term: at an object word right after a colour word, the cross-entropy of the colour's token.
     * Tokens 0-4 with E the identity; 1 is a colour, 2 an object. Row 0 "1 2" binds at position 2, whose hidden state
     * says 10 at token 1 (the colour: cost log(1 + 4e^-10)); row 1 "1 2" binds at position 2 too, saying 10 at token 2
     * (its own token: cost 10 + log(1 + 4e^-10)); "2 1" (object before colour) and "3 2" (no colour) bind nothing.
     */
    @Test
    void colourBindingTermAsksAnObjectWordAfterAColourForThatColour() {
        try (Scope s = Scope.inference()) {
            Tensor embedding = torch.eye(5);
            Tensor ids = Ops.fromLongs(new long[] {0, 1, 2, 2, 1, 3, 2, 4, 0, 1, 2, 4, 3, 2, 1, 4}, 2, 8);
            float[] h = new float[2 * 8 * 5];
            h[(2) * 5 + 1] = 10;         // row 0, position 2: says the colour (token 1)
            h[(8 + 2) * 5 + 2] = 10;     // row 1, position 2: says its own token 2
            Tensor logProbabilities = OwnTokenLoss.logProbabilities(Ops.fromFloats(h, 2, 8, 5), embedding);
            double right = Math.log1p(4 * Math.exp(-10)), wrong = 10 + Math.log1p(4 * Math.exp(-10));
            assertEquals((right + wrong) / 2, Ops.item(OwnTokenLoss.boundColour(logProbabilities, ids, new long[] {1}, new long[] {2})), 1e-5);
            // with no colour word among the tokens, nothing binds and the term is 0, not 0/0
            assertEquals(0.0, Ops.item(OwnTokenLoss.boundColour(logProbabilities, ids, new long[] {3}, new long[] {4})), 1e-9);
        }
    }

    /**
     * The recipe records the objective's weight: the frozen-text recipe's is 1, and a recipe
     * file from before the objective (no such field) reads as none, as it was trained.
     */
    @Test
    void ownTokenWeightIsPartOfTheRecipe() throws Exception {
        assertEquals(1.0, BaseModelRecipe.frozenText().contrastive().ownTokenWeight());
        BaseModelRecipe r = BaseModelRecipe.frozenText().withContrastive(BaseModelRecipe.frozenText().contrastive().withOwnTokenWeight(0.5));
        ObjectMapper json = new ObjectMapper();
        assertEquals(r, json.readValue(json.writeValueAsString(r), BaseModelRecipe.class));
        BaseModelRecipe none = r.withContrastive(r.contrastive().withOwnTokenWeight(0));
        assertFalse(none.contrastive().ownTokenPadding(), "no objective, so none on the padding either");
        String old = json.writeValueAsString(none).replace(",\"ownTokenWeight\":0.0", "");
        assertFalse(old.contains("ownToken"), old);
        assertEquals(none, json.readValue(old, BaseModelRecipe.class));
    }

    /**
     * The frozen-text recipe end to end: the contrastive stage's towers, the diffusion stage training only the UNet
     * (the text encoder's weights bit for bit unchanged by its steps), and a model whose text_encoder/ is exactly the
     * frozen tower, loaded like any SD folder.
     */
    @Test
    void diffusionStageTrainsOnlyTheUNetOnTheFrozenTower() throws Exception {
        BaseModelRecipe r = tiny(2, 2);
        Path work = tmp.resolve("work");
        Pretrainer.Result done = new Pretrainer(r, work, Progress.NONE).schedule(1000, 1000).run();
        assertTrue(done.finished());
        Path model = done.model();
        assertArrayEquals(Files.readAllBytes(work.resolve("text_encoder/model.safetensors")), Files.readAllBytes(model.resolve("text_encoder/model.safetensors")));
        assertTrue(Files.isRegularFile(model.resolve("image_encoder/model.safetensors")));
        Safetensors text = Safetensors.open(model.resolve("text_encoder/model.safetensors"));
        assertTrue(text.keys().contains("text_projection.weight"), "saved as transformers names it");
        assertEquals("F16", text.entries().get("text_projection.weight").dtype());
        assertTrue(Files.readString(model.resolve("text_encoder/config.json")).contains("CLIPTextModelWithProjection"));
        List<String> stages = Files.readAllLines(work.resolve("losses.csv")).stream().skip(1).map(l -> l.split(",")[0]).distinct().toList();
        assertEquals(List.of("contrastive", "vae", "diffusion", "localization", "decoder"), stages, "the localization loss logged beside the diffusion stage's");
        StableDiffusion sd = StableDiffusion.load(model, ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float, Progress.NONE);
        assertEquals(32, sd.textEncoder.config().hiddenSize());
        assertEquals(32, sd.unet.config().crossAttentionDim());

        // the diffusion stage once more on the finished work folder: its text encoder before and after its steps
        try (PretrainingRun run = PretrainingRun.start(r, work, Progress.NONE, new dev.perfusion.util.Phases())) {
            DiffusionStage stage = new DiffusionStage(run, ClipTokenizer.load(work.resolve("tokenizer")), null, 0, null, false, false, new DiffusersExport(run, null, DiffusersExport.VaeOrigin.KEPT));
            assertEquals(1, stage.modules().size(), "only the UNet learns");
            Map<String, Tensor> textBefore = copies(stage.textEncoder().namedParameters()), unetBefore = copies(stage.unet().namedParameters());
            TrainedWeights weights = new TrainedWeights(stage, run); // StageLoop's step, without its sample pictures
            for (int step = 0; step < 2; step++) {
                try (Scope s = Scope.open()) {
                    stage.loss(stage.prepare(run.batches().now(stage.plan().data(), step)), step).objective().backward();
                }
                weights.step(step, run.phases());
            }
            stage.textEncoder().namedParameters().forEach((name, p) -> assertTrue(torch.equal(textBefore.get(name), p.t()), name + " moved"));
            assertTrue(stage.unet().namedParameters().entrySet().stream().anyMatch(e -> !torch.equal(unetBefore.get(e.getKey()), e.getValue().t())),
                    "the UNet learned");
            ClipTextModel frozen = ClipTextModel.load(work.resolve("text_encoder"), Ops.cpu(), torch.ScalarType.Float);
            frozen.namedParameters().forEach((name, p) -> assertTrue(torch.equal(textBefore.get(name), p.t()), name + " is not the file's"));
        }
    }

    /**
     * The frozen-text recipe continued from a model whose text encoder learned with its UNet: the UNet starts from that
     * model's (a warm start), the contrastive stage still runs, and the new model's text encoder is the new frozen
     * tower, not the continued model's; the VAE is kept, so no VAE stage runs.
     */
    @Test
    void continuingAJointlyTrainedModelKeepsItsUNetAsTheStartOnly() throws Exception {
        Path joint = new Pretrainer(BaseModelRecipe.standard().withText(32, 1, 2).quick(1, 1), tmp.resolve("joint"), Progress.NONE)
                .schedule(1000, 1000).run().model();
        Path work = tmp.resolve("warm");
        BaseModelRecipe frozen = tiny(1, 1).withVae(tiny(1, 1).vaeChannels(), 4); // the joint model's latents, so its VAE fits
        Pretrainer.Result r = new Pretrainer(frozen, work, Progress.NONE).schedule(1000, 1000).continueFrom(joint).run();
        assertTrue(r.finished());
        List<String> stages = Files.readAllLines(work.resolve("losses.csv")).stream().skip(1).map(l -> l.split(",")[0]).distinct().toList();
        assertEquals(List.of("contrastive", "diffusion", "localization"), stages);
        assertArrayEquals(Files.readAllBytes(work.resolve("text_encoder/model.safetensors")), Files.readAllBytes(r.model().resolve("text_encoder/model.safetensors")));
        assertTrue(Safetensors.open(r.model().resolve("text_encoder/model.safetensors")).keys().contains("text_projection.weight"), "the new tower");
        assertArrayEquals(Files.readAllBytes(joint.resolve("vae/diffusion_pytorch_model.safetensors")),
                Files.readAllBytes(r.model().resolve("vae/diffusion_pytorch_model.safetensors")), "the VAE kept");
        assertTrue(Files.readString(r.model().resolve("recipe.json")).contains("continued_from"));
    }

    /**
     * A frozen-text model continued with captions that name the objects' details: the words are new to its tokenizer,
     * so the tokenizer and the text encoder are trained anew (the contrastive stage runs, binding each accessory to
     * its colour) and only the UNet is the start; its VAE is kept. A model whose text encoder learned with its UNet
     * cannot be continued so.
     */
    @Test
    void continuingWithDetailedCaptionsTrainsANewTextEncoderUnderTheModelsUNet() throws Exception {
        Path model = new Pretrainer(tiny(1, 1).withCaptionDetails(0), tmp.resolve("plain"), Progress.NONE).schedule(1000, 1000).run().model();
        assertEquals(0.0, BaseModelRecipe.recordedIn(model).captionDetails());
        assertFalse(Files.readString(model.resolve("recipe.json")).contains("captionDetails"), "older readers see the recipe they know");
        assertTrue(ClipTokenizer.load(model.resolve("tokenizer")).tokensOf("spotted").size() > 1, "no detail words without details");

        Path work = tmp.resolve("detailed");
        Pretrainer.Result r = new Pretrainer(tiny(1, 1), work, Progress.NONE).schedule(1000, 1000).continueFrom(model).run();
        assertTrue(r.finished());
        List<String> stages = Files.readAllLines(work.resolve("losses.csv")).stream().skip(1).map(l -> l.split(",")[0]).distinct().toList();
        assertEquals(List.of("contrastive", "diffusion", "localization"), stages, "a new text tower, then the UNet; the VAE kept");
        ClipTokenizer tokenizer = ClipTokenizer.load(r.model().resolve("tokenizer"));
        for (String w : List.of("spotted", "with", "bow", "roof")) assertEquals(1, tokenizer.tokensOf(w).size(), w);
        assertFalse(java.util.Arrays.equals(Files.readAllBytes(model.resolve("text_encoder/model.safetensors")),
                Files.readAllBytes(r.model().resolve("text_encoder/model.safetensors"))), "the text encoder is a new one");
        assertArrayEquals(Files.readAllBytes(model.resolve("vae/diffusion_pytorch_model.safetensors")),
                Files.readAllBytes(r.model().resolve("vae/diffusion_pytorch_model.safetensors")), "the VAE kept");
        Safetensors unetBefore = Safetensors.open(model.resolve("unet/diffusion_pytorch_model.safetensors"));
        Safetensors unetAfter = Safetensors.open(r.model().resolve("unet/diffusion_pytorch_model.safetensors"));
        double moved = Ops.item(unetAfter.get("conv_in.weight").sub(unetBefore.get("conv_in.weight")).abs().max());
        assertTrue(moved > 0 && moved < 0.01, "one step from the model's UNet, not a new one: moved " + moved);
        assertEquals(0.5, BaseModelRecipe.recordedIn(r.model()).captionDetails());
        StableDiffusion.load(r.model(), ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float, Progress.NONE);

        Path joint = new Pretrainer(BaseModelRecipe.standard().withText(32, 1, 2).quick(1, 1), tmp.resolve("joint"), Progress.NONE)
                .schedule(1000, 1000).run().model();
        IllegalArgumentException refused = assertThrows(IllegalArgumentException.class, () -> new Pretrainer(
                BaseModelRecipe.standard().withText(32, 1, 2).quick(1, 1).withCaptionDetails(0.5), tmp.resolve("x"), Progress.NONE).continueFrom(joint));
        assertTrue(refused.getMessage().contains("frozen-text"), refused.getMessage());
        assertThrows(IllegalArgumentException.class, () -> tiny(1, 1).withCaptionDetails(1.5));
    }

    /**
     * A finished stage rerun with another step count (judges --clip-steps, pretrain --contrastive-steps) is refused,
     * naming the difference, instead of passing its towers on as trained for the new count; the same recipe again
     * uses them.
     */
    @Test
    void aFinishedStageIsNotPassedOffAsAnotherRecipes() throws Exception {
        BaseModelRecipe r = tiny(1, 1);
        Path work = tmp.resolve("finished");
        assertTrue(new Pretrainer(r, work, Progress.NONE).schedule(1000, 1000).runContrastiveStage().finished());
        assertFalse(Files.exists(work.resolve(Pretrainer.ORIGIN)), "the towers alone depend on no origin");
        byte[] towers = Files.readAllBytes(work.resolve("text_encoder/model.safetensors"));
        assertTrue(new Pretrainer(r, work, Progress.NONE).runContrastiveStage().finished(), "the same recipe again");
        BaseModelRecipe more = r.withContrastive(r.contrastive().withSteps(2));
        IOException refused = assertThrows(IOException.class, () -> new Pretrainer(more, work, Progress.NONE).runContrastiveStage());
        assertTrue(refused.getMessage().contains("contrastive.steps 1, now 2"), refused.getMessage());
        IOException whole = assertThrows(IOException.class, () -> new Pretrainer(more, work, Progress.NONE).run());
        assertTrue(whole.getMessage().contains("contrastive.steps 1, now 2"), whole.getMessage());
        assertFalse(Files.exists(work.resolve(Pretrainer.ORIGIN)), "a refused run records no start: another may begin here");
        assertArrayEquals(towers, Files.readAllBytes(work.resolve("text_encoder/model.safetensors")), "the towers are left as they were");

        // a whole run after the towers alone records where it started (the towers' log kept the record from being written)
        new Pretrainer(r, work, Progress.NONE).schedule(1, 1000).timeLimit(0).run();
        assertTrue(Files.readString(work.resolve(Pretrainer.ORIGIN)).contains("\"continued_from\" : null"));
    }

    /** A contrastive stage stopped after every step and resumed writes the towers of an uninterrupted run, bit for bit. */
    @Test
    void resumingMidStageGivesTheUninterruptedBits() throws Exception {
        BaseModelRecipe r = tiny(1, 3);
        Path straight = tmp.resolve("straight"), stopped = tmp.resolve("stopped");
        assertTrue(new Pretrainer(r, straight, Progress.NONE).schedule(1000, 1000).runContrastiveStage().finished());
        int runs = 0;
        Pretrainer.Result p;
        do {
            p = new Pretrainer(r, stopped, Progress.NONE).schedule(1, 1000).timeLimit(0).runContrastiveStage();
            runs++;
        } while (!p.finished() && runs < 10);
        assertTrue(p.finished());
        assertEquals(3, runs, "one step a run");
        for (String f : List.of("text_encoder/model.safetensors", "image_encoder/model.safetensors")) {
            assertArrayEquals(Files.readAllBytes(straight.resolve(f)), Files.readAllBytes(stopped.resolve(f)), f);
        }
    }

    /** On a tiny run (80 steps of 8 pictures, a short warm-up) the contrastive loss falls well below chance (log 8) and its start. */
    @Test
    void contrastiveLossFallsOnATinyRun() throws Exception {
        // plain captions: in 80 steps of 8 pictures the towers learn the kinds and colours, not yet the details
        BaseModelRecipe r = tiny(1, 80).withCaptionDetails(0).withContrastive(new BaseModelRecipe.Contrastive(80, 8, 3e-3, 5, List.of(16, 32, 64, 128), 8, 32, 0));
        Path work = tmp.resolve("work");
        assertTrue(new Pretrainer(r, work, Progress.NONE).schedule(1000, 1000).runContrastiveStage().finished());
        List<Double> losses = new ArrayList<>();
        for (String line : Files.readAllLines(work.resolve("losses.csv")).subList(1, 81)) losses.add(Double.parseDouble(line.split(",")[2]));
        double first = losses.subList(0, 10).stream().mapToDouble(d -> d).average().orElseThrow();
        double last = losses.subList(70, 80).stream().mapToDouble(d -> d).average().orElseThrow();
        assertTrue(last < Math.log(8) - 0.5 && last < first - 0.5, "falls below chance, log 8: first ten steps " + first + ", last ten " + last + ": " + losses);
    }

    /**
     * With the side words weighed apart, or the padding in the objective, the stage runs as before and only the
     * own-token objective's share of the first loss changes: lower with the side words free, higher with the padding's
     * cross-entropy added.
     */
    @Test
    void sideWordWeightAndPaddingChangeTheFirstLoss() throws Exception {
        BaseModelRecipe.Contrastive withObjective = new BaseModelRecipe.Contrastive(2, 8, 3e-3, 1, List.of(16, 32, 64, 128), 8, 32, 1);
        List<BaseModelRecipe.Contrastive> variants = List.of(withObjective, withObjective.withSideWordWeight(0.0), withObjective.withOwnTokenPadding(true));
        double[] firstLoss = new double[variants.size()];
        for (int i = 0; i < variants.size(); i++) {
            Path work = tmp.resolve("variant-" + i);
            BaseModelRecipe r = tiny(1, 2).withContrastive(variants.get(i));
            assertTrue(new Pretrainer(r, work, Progress.NONE).schedule(1000, 1000).runContrastiveStage().finished());
            firstLoss[i] = Double.parseDouble(Files.readAllLines(work.resolve("losses.csv")).get(1).split(",")[2]);
        }
        assertTrue(firstLoss[1] < firstLoss[0], "the first batch's captions name sides: " + firstLoss[1] + " against " + firstLoss[0]);
        assertTrue(firstLoss[2] > firstLoss[0], "the padding's cross-entropy adds: " + firstLoss[2] + " against " + firstLoss[0]);
    }

    private static Map<String, Tensor> copies(Map<String, Param> params) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        try (Scope s = Scope.inference()) {
            params.forEach((name, p) -> out.put(name, Scope.keep(p.t().detach().clone())));
        }
        return out;
    }
}
