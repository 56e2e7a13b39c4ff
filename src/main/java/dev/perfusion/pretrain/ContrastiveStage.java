package dev.perfusion.pretrain;

import dev.perfusion.io.Safetensors;
import dev.perfusion.nn.Weights;
import dev.perfusion.nn.Module;
import dev.perfusion.pretrain.WorldBatches.Batch;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.text.ClipTextModelWithProjection;
import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.world.Accessory;
import dev.perfusion.world.Category;
import dev.perfusion.world.ColorWord;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;

/**
 * The first stage of the frozen-text recipe: a CLIP for the world. The text tower (CLIP's causal text transformer,
 * pooled at the EOS token through {@code text_projection}) and a small {@link ImageTower} learn together with CLIP's
 * symmetric contrastive loss on world pictures and their captions (never empty ones). Leaves {@code text_encoder/}
 * (transformers' layout, fp16 as shipped: the frozen encoder the diffusion stage reads and exports unchanged) and
 * {@code image_encoder/} in the work folder.
 */
final class ContrastiveStage implements Stage {
    static final long DATA_SEED = 1L << 31;
    /** The words a caption names a side with, which {@link BaseModelRecipe.Contrastive#sideWordWeight} weighs. */
    private static final List<String> SIDE_WORDS = List.of("left", "right");
    /** Pictures for the retrieval accuracy the samples report: drawn by no training step. */
    private static final WorldBatches.Series PROBE = new WorldBatches.Series(DATA_SEED - 10_000, 64, true, false);
    /** The stage's result in the work folder. */
    static final String TEXT_FOLDER = "text_encoder", IMAGE_FOLDER = "image_encoder";

    private final PretrainingRun run;
    private final BaseModelRecipe recipe;
    private final ClipTokenizer tokenizer;
    private final ClipTextModelWithProjection text;
    private final ImageTower image;
    private final ContrastiveLoss contrastive;
    /** The side words' tokens when the own-token objective weighs them apart ({@code --side-word-weight}), else none. */
    private final long[] sideTokens;
    /** The colour words' and the object words' tokens when the colour-binding term is on ({@code --colour-binding-weight}), else none. */
    private final long[] colourTokens, objectTokens;

    ContrastiveStage(PretrainingRun run, ClipTokenizer tokenizer) {
        this.run = run;
        this.recipe = run.recipe();
        this.tokenizer = tokenizer;
        this.text = ClipTextModelWithProjection.create(recipe.textEncoderConfig(tokenizer.vocabSize(), tokenizer.bosId(), tokenizer.eosId(), tokenizer.padId()));
        this.image = new ImageTower(recipe.imageTowerConfig());
        this.contrastive = new ContrastiveLoss();
        this.sideTokens = recipe.contrastive().sideWordWeight() != null ? SIDE_WORDS.stream().mapToLong(this::wordToken).toArray() : new long[0];
        boolean binding = recipe.contrastive().colourBindingWeight() > 0;
        this.colourTokens = binding ? Arrays.stream(ColorWord.values()).map(ColorWord::word).mapToLong(this::wordToken).toArray() : new long[0];
        // with detailed captions an accessory is coloured too ("with a blue bow"): its first word binds its colour
        Stream<String> accessories = recipe.captionDetails() > 0
                ? Arrays.stream(Accessory.values()).flatMap(a -> a.phrase().stream()).map(p -> p.split(" ")[0]) : Stream.empty();
        this.objectTokens = binding ? Stream.concat(Arrays.stream(Category.values()).map(Category::word), accessories).mapToLong(this::wordToken).toArray() : new long[0];
        Weights.initRandom(text, recipe.seed() + 3);
        Weights.initRandom(image, recipe.seed() + 4);
        contrastive.initialise();
    }

    /** Whether a work folder holds this stage's result. */
    static boolean done(Path work) {
        return Files.isRegularFile(work.resolve(TEXT_FOLDER).resolve("model.safetensors"))
                && Files.isRegularFile(work.resolve(IMAGE_FOLDER).resolve("model.safetensors"));
    }

    @Override
    public Plan plan() {
        BaseModelRecipe.Contrastive c = recipe.contrastive();
        return new Plan("contrastive", "pretraining text + image towers (CLIP)", "InfoNCE", c.steps(), c.warmupSteps(), c.learningRate(),
                new WorldBatches.Series(DATA_SEED, c.batch(), true, false));
    }

    @Override
    public List<Module> modules() {
        return List.of(text, image, contrastive);
    }

    @Override
    public Loss loss(Batch batch, int step) {
        Tensor ids = tokenizer.idsForModel(batch.captions());
        Tensor hidden = text.textModel().encode(ids);
        Tensor textEmbeds = text.textEmbeds(ids, hidden);
        run.phases().lap("text tower");
        Tensor imageEmbeds = image.imageEmbeds(batch.images());
        run.phases().lap("image tower");
        List<String> hard = new java.util.ArrayList<>();
        if (recipe.contrastive().swappedSideNegatives()) hard.addAll(sidesSwapped(batch.captions()));
        if (recipe.contrastive().accessoryNegatives()) hard.addAll(accessoriesSwapped(batch.captions(), step));
        Tensor negatives = null;
        if (!hard.isEmpty()) {
            Tensor negativeIds = tokenizer.idsForModel(hard);
            negatives = text.textEmbeds(negativeIds, text.textModel().encode(negativeIds));
            run.phases().lap("hard negatives");
        }
        Tensor loss = contrastive.forward(textEmbeds, imageEmbeds, negatives);
        double ownTokenWeight = recipe.contrastive().ownTokenWeight();
        if (ownTokenWeight > 0) {
            Tensor logProbabilities = OwnTokenLoss.logProbabilities(hidden, text.textModel().tokenEmbedding().weight.t());
            Tensor own = OwnTokenLoss.own(logProbabilities, ids);
            Tensor objective = OwnTokenLoss.words(own, ids, tokenizer.eosId(), sideTokens.length > 0 ? recipe.contrastive().sideWordWeight() : 1, sideTokens);
            if (recipe.contrastive().ownTokenPadding()) objective = Ops.add(objective, OwnTokenLoss.padding(own, ids, tokenizer.eosId()));
            double binding = recipe.contrastive().colourBindingWeight();
            if (binding > 0) objective = Ops.add(objective, Ops.mul(OwnTokenLoss.boundColour(logProbabilities, ids, colourTokens, objectTokens), binding));
            loss = Ops.add(loss, Ops.mul(objective, ownTokenWeight));
        }
        run.phases().lap("loss");
        return new Loss(loss, Ops.item(loss));
    }

    /** The token id of a word that is one token of the world's vocabulary. */
    private long wordToken(String word) {
        List<String> tokens = tokenizer.tokensOf(word);
        if (tokens.size() != 1) throw new IllegalStateException("'" + word + "' is not one token of the world's vocabulary: " + tokens);
        return tokenizer.tokenId(tokens.get(0)).orElseThrow();
    }

    /** Each caption that says "on the left" or "on the right", with the two swapped: the same words, the other picture. */
    static List<String> sidesSwapped(List<String> captions) {
        List<String> out = new java.util.ArrayList<>();
        for (String c : captions) {
            if (!c.contains(LEFT) && !c.contains(RIGHT)) continue;
            out.add(c.replace(LEFT, "\u0000").replace(RIGHT, LEFT).replace("\u0000", RIGHT));
        }
        return out;
    }

    private static final String LEFT = "on the left", RIGHT = "on the right";

    /**
     * Each caption that names an accessory ("a brown teddy with a blue bow"), with another accessory its object can
     * wear in its place, the same colour: the same words but one, the wrong picture. Which other one varies with the
     * caption and the step.
     */
    static List<String> accessoriesSwapped(List<String> captions, int step) {
        List<String> out = new java.util.ArrayList<>();
        for (String c : captions) {
            java.util.regex.Matcher m = ACCESSORY_PHRASE.matcher(c);
            if (!m.find()) continue;
            String worn = m.group(2);
            List<String> others = wearable(c.substring(0, m.start())).stream().filter(p -> !p.equals(worn)).toList();
            if (others.isEmpty()) continue;
            String other = others.get(Math.floorMod(c.hashCode() + step, others.size()));
            out.add(c.substring(0, m.start(2)) + other + c.substring(m.end(2)));
        }
        return out;
    }

    /** The accessories that the last object word of {@code text} can wear (every one where it names none). */
    private static List<String> wearable(String text) {
        String[] words = text.split(" ");
        for (int i = words.length - 1; i >= 0; i--) {
            for (Category c : Category.values()) {
                if (c.word().equals(words[i])) return c.accessories().stream().flatMap(a -> a.phrase().stream()).toList();
            }
        }
        return ACCESSORY_PHRASES;
    }

    private static final List<String> ACCESSORY_PHRASES = Arrays.stream(Accessory.values()).flatMap(a -> a.phrase().stream()).toList();
    /** "with a COLOUR ACCESSORY", as {@code CaptionGrammar} writes a detailed caption's accessory. */
    private static final java.util.regex.Pattern ACCESSORY_PHRASE = java.util.regex.Pattern.compile("\\bwith a (\\w+) ("
            + String.join("|", ACCESSORY_PHRASES) + ")\\b");

    /** The loss curves, and the EMA towers' picture-to-caption accuracy on 64 pictures no step trains on. */
    @Override
    public void samples(TrainedWeights weights, int step) throws IOException {
        run.losses().plot();
        try (Scope s = Scope.inference()) {
            Batch b = run.batches().now(PROBE, 0);
            Tensor t = weights.ema(0, ClipTextModelWithProjection.class).textEmbeds(tokenizer.idsForModel(b.captions()));
            Tensor v = weights.ema(1, ImageTower.class).imageEmbeds(b.images());
            run.progress().message(String.format(Locale.ROOT, "contrastive step %d: picture-to-caption top-1 %.3f of %d, logit scale %.2f",
                    step, ContrastiveLoss.accuracy(t, v, b.captions()), b.captions().size(), weights.ema(2, ContrastiveLoss.class).scale()));
        }
    }

    /** Writes both EMA towers: {@code text_encoder/} as transformers' CLIPTextModelWithProjection, fp16; {@code image_encoder/}. */
    @Override
    public Path finish(TrainedWeights weights, double loss) throws IOException {
        Path work = run.work();
        // the record first: towers without it would pass as a folder from before records were kept
        StageRecord.TOWERS.write(work, recipe);
        DiffusersExport.writeComponent(work.resolve(TEXT_FOLDER), recipe.textEncoderJson(tokenizer.vocabSize(), tokenizer.bosId(), tokenizer.eosId(), tokenizer.padId()),
                "model.safetensors", weights.ema(0, ClipTextModelWithProjection.class), Safetensors.StoredType.F16);
        DiffusersExport.writeComponent(work.resolve(IMAGE_FOLDER), recipe.imageTowerConfig().toJson(), "model.safetensors",
                weights.ema(1, ImageTower.class), Safetensors.StoredType.F16);
        run.progress().message(String.format(Locale.ROOT, "contrastive stage done (loss %.4f): the frozen text encoder is in %s", loss, work.resolve(TEXT_FOLDER)));
        return null;
    }
}
