package dev.perfusion.pretrain;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.perfusion.sampling.SchedulerConfig;
import dev.perfusion.text.ClipTextConfig;
import dev.perfusion.unet.UNetConfig;
import dev.perfusion.vae.VaeConfig;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Collectors;

/**
 * The bundled base model: Stable Diffusion's architecture (CLIP text transformer, UNet2DConditionModel with
 * cross-attention, AutoencoderKL) at a size a 2-core CPU trains in about two hours, for 64x64 pictures of the
 * synthetic world, and the optimisation settings that train it. The configs are diffusers' own, so the model
 * loads through the same code as any SD checkpoint.
 */
public record BaseModelRecipe(
        int imageSize,
        int textHidden, int textLayers, int textHeads, int textMaxLength,
        List<Integer> unetChannels, int unetLayersPerBlock, int unetHeads,
        List<Integer> vaeChannels, int vaeGroups, int latentChannels,
        int vaeSteps, int vaeBatch, double vaeLr, int decoderSteps,
        int diffusionSteps, int diffusionBatch, double diffusionLr, int warmupSteps,
        double emaDecay, double captionDropout, double minSnrGamma, double weightDecay, long seed,
        @JsonInclude(JsonInclude.Include.NON_NULL) Contrastive contrastive,
        @JsonInclude(JsonInclude.Include.NON_DEFAULT) double attentionLocalization,
        @JsonInclude(JsonInclude.Include.NON_NULL) Localization localizationForm,
        @JsonInclude(JsonInclude.Include.NON_DEFAULT) double decoderAdversarialWeight,
        @JsonInclude(JsonInclude.Include.NON_DEFAULT) double captionDetails,
        @JsonInclude(JsonInclude.Include.NON_DEFAULT) boolean localizedDetails,
        @JsonInclude(JsonInclude.Include.NON_DEFAULT) double accessoryLossWeight,
        @JsonInclude(JsonInclude.Include.NON_DEFAULT) boolean bf16,
        @JsonInclude(JsonInclude.Include.NON_NULL) Integer decoderCriticAlone,
        @JsonInclude(JsonInclude.Include.NON_DEFAULT) boolean unnamedPlacementMiddle) {

    /** The form of {@link AttentionLocalization}'s loss; null in a recipe means {@link #GAP}. */
    public enum Localization {
        /** FastComposer's: a word's mean attention outside its object minus inside (it also rewards being read more). */
        GAP,
        /** The share of a word's map, scaled to sum 1, outside its object (where it is read, not how much). */
        SHARE
    }

    /** The localization loss's form, {@link Localization#GAP} where the recipe names none. */
    public Localization localization() {
        return localizationForm == null ? Localization.GAP : localizationForm;
    }

    /**
     * The first stage of the frozen-text recipe: the text tower (the text encoder's size above, plus its
     * {@code text_projection}) and a small {@link ImageTower} trained with CLIP's contrastive loss; afterwards the
     * text encoder stays frozen and the diffusion stage trains the UNet alone. Null in today's recipe, where the text
     * encoder and UNet learn together.
     */
    public record Contrastive(int steps, int batch, double learningRate, int warmupSteps, List<Integer> imageChannels,
                              int imageGroups, int projectionDim, double ownTokenWeight,
                              @JsonInclude(JsonInclude.Include.NON_DEFAULT) boolean swappedSideNegatives,
                              @JsonInclude(JsonInclude.Include.NON_DEFAULT) boolean attentionPool,
                              @JsonInclude(JsonInclude.Include.NON_NULL) Double sideWordWeight,
                              @JsonInclude(JsonInclude.Include.NON_DEFAULT) boolean ownTokenPadding,
                              @JsonInclude(JsonInclude.Include.NON_DEFAULT) double colourBindingWeight,
                              @JsonInclude(JsonInclude.Include.NON_DEFAULT) boolean accessoryNegatives,
                              @JsonInclude(JsonInclude.Include.NON_DEFAULT) int imageLayers) {
        public Contrastive {
            if (ownTokenWeight <= 0) { // no own-token objective, so none on the padding and no colour binding either
                ownTokenPadding = false;
                colourBindingWeight = 0;
            }
        }

        public Contrastive(int steps, int batch, double learningRate, int warmupSteps, List<Integer> imageChannels,
                           int imageGroups, int projectionDim, double ownTokenWeight) {
            this(steps, batch, learningRate, warmupSteps, imageChannels, imageGroups, projectionDim, ownTokenWeight, false, false, null, false, 0, false, 0);
        }

        public static Contrastive standard() {
            return new Contrastive(1500, 64, 1e-3, 100, List.of(16, 32, 64, 128), 8, 128, 0);
        }

        Contrastive quick(int steps) {
            return with(c -> {
                c.steps = steps;
                c.batch = Math.min(batch, 8);
                c.warmupSteps = Math.min(warmupSteps, steps);
            });
        }

        public Contrastive withSteps(int steps) {
            return with(c -> {
                c.steps = steps;
                c.warmupSteps = Math.min(warmupSteps, steps);
            });
        }

        /** With the own-token objective ({@link OwnTokenLoss}) at this weight beside the contrastive loss (0: none). */
        public Contrastive withOwnTokenWeight(double weight) {
            return with(c -> c.ownTokenWeight = weight);
        }

        Contrastive withProjection(int dim) {
            return with(c -> c.projectionDim = dim);
        }

        /**
         * With each caption that names a side also read with its sides swapped, as a negative for every picture of the
         * batch (NegCLIP's hard negatives): the same words, so only an encoder that says which object is on which side
         * tells them apart.
         */
        public Contrastive withSwappedSideNegatives(boolean on) {
            return with(c -> c.swappedSideNegatives = on);
        }

        /**
         * With each caption that names an accessory ("with a blue bow") also read with another accessory in its place, as
         * a negative for every picture of the batch: plain batches rarely hold two pictures that differ in the accessory
         * alone, so nothing else asks the towers to see which accessory an object wears. (Measured: it does not make the
         * small image tower see it; README, "Towers that must tell the accessories apart".)
         */
        public Contrastive withAccessoryNegatives(boolean on) {
            return with(c -> c.accessoryNegatives = on);
        }

        /**
         * With this many residual blocks after each of the image tower's halvings ({@link ImageTower}; 0: none, as the
         * shipped towers): depth to see which accessory an object wears, which the shipped tower does not.
         */
        public Contrastive withImageLayers(int layers) {
            if (layers < 0) throw new IllegalArgumentException("image tower layers " + layers + ": expected at least 0");
            return with(c -> c.imageLayers = layers);
        }

        /** With the image tower pooled by attention over positions ({@link ImageTower}), so that it sees where things are. */
        public Contrastive withAttentionPool(boolean on) {
            return with(c -> c.attentionPool = on);
        }

        /**
         * With the own-token objective at this share of its weight on the side words ("left", "right"; 0: free, null:
         * as on every word): a causal tower's side word has read the object before it, and may then say which object
         * stands on that side, which the full objective erases.
         */
        public Contrastive withSideWordWeight(Double share) {
            return with(c -> c.sideWordWeight = share);
        }

        /**
         * With the own-token objective on the padding too ({@link OwnTokenLoss#padding}): each padding position names
         * its own token instead of summarising the caption, so that a learned concept's i* does not reach it.
         */
        public Contrastive withOwnTokenPadding(boolean on) {
            return with(c -> c.ownTokenPadding = on);
        }

        /**
         * With the colour-binding term at this share of the own-token objective's weight ({@link OwnTokenLoss#boundColour}):
         * an object word right after a colour word must also name that colour, so that its encoding says which colour
         * the object is. The own-token objective alone leaves every word about itself, and a UNet that reads the words as
         * a set then cannot tell which object a colour word colours.
         */
        public Contrastive withColourBindingWeight(double share) {
            return with(c -> c.colourBindingWeight = share);
        }

        /** This stage with some of its settings changed, as {@link BaseModelRecipe#with} does for the recipe. */
        private Contrastive with(Consumer<Settings> change) {
            Settings c = new Settings(this);
            change.accept(c);
            return c.stage();
        }

        /** The stage's settings, to be changed and made into a new stage. */
        private static final class Settings {
            int steps, batch, warmupSteps, imageGroups, projectionDim, imageLayers;
            double learningRate, ownTokenWeight, colourBindingWeight;
            List<Integer> imageChannels;
            boolean swappedSideNegatives, attentionPool, ownTokenPadding, accessoryNegatives;
            Double sideWordWeight;

            Settings(Contrastive c) {
                steps = c.steps;
                batch = c.batch;
                learningRate = c.learningRate;
                warmupSteps = c.warmupSteps;
                imageChannels = c.imageChannels;
                imageGroups = c.imageGroups;
                projectionDim = c.projectionDim;
                ownTokenWeight = c.ownTokenWeight;
                swappedSideNegatives = c.swappedSideNegatives;
                attentionPool = c.attentionPool;
                sideWordWeight = c.sideWordWeight;
                ownTokenPadding = c.ownTokenPadding;
                colourBindingWeight = c.colourBindingWeight;
                accessoryNegatives = c.accessoryNegatives;
                imageLayers = c.imageLayers;
            }

            Contrastive stage() {
                return new Contrastive(steps, batch, learningRate, warmupSteps, imageChannels, imageGroups, projectionDim, ownTokenWeight,
                        swappedSideNegatives, attentionPool, sideWordWeight, ownTokenPadding, colourBindingWeight, accessoryNegatives, imageLayers);
            }
        }
    }

    public static BaseModelRecipe standard() {
        return new BaseModelRecipe(64,
                128, 4, 4, 32,
                List.of(32, 64, 128), 1, 4,
                List.of(32, 64, 64), 16, 4,
                1500, 8, 1e-3, 2000,
                3000, 32, 8e-4, 200,
                0.999, 0.1, 5.0, 0.01, 20261124L, null, 0, null, 0, 0, false, 0, false, null, false);
    }

    /**
     * Stable Diffusion's setting in small: a CLIP text tower trained contrastively on the world's pictures and
     * captions (the first stage), then frozen while the UNet learns on its outputs. The tower is 2 layers x 128 with
     * the own-token objective at weight 1 beside the contrastive loss, on the words and on the padding, with each
     * object word after a colour word also naming that colour, 600 steps of 64: the choice the s profile, the colour
     * binding and the trained concepts' gates measured (README). Half the loose captions name the object's pattern, and
     * half its accessory ({@link #withCaptionDetails}). The VAE puts 8 latent channels at 16x16 (4 lose the teddy's
     * bow). The UNet learns with attention localization in the gap form at 0.03, on the detail words too
     * ({@link #withLocalizedDetails}). These are the shipped model's last run's settings; the rest as {@link #standard()}.
     */
    public static BaseModelRecipe frozenText() {
        return standard().withText(128, 2, 4).withContrastive(new Contrastive(600, 64, 1e-3, 100, List.of(16, 32, 64, 128), 8, 128, 1.0)
                .withOwnTokenPadding(true).withColourBindingWeight(1.0)).withAttentionLocalization(0.03, Localization.GAP)
                .withVae(List.of(32, 64, 64), 8).withCaptionDetails(0.5).withLocalizedDetails(true);
    }

    /** The recipe named {@code standard} or {@code frozen-text}. */
    public static BaseModelRecipe named(String name) {
        return switch (name) {
            case "standard" -> standard();
            case "frozen-text" -> frozenText();
            default -> throw new IllegalArgumentException("no recipe named '" + name + "' (standard, frozen-text)");
        };
    }

    /**
     * The recipe a model exported by {@code perfusion pretrain} was trained with (its {@code recipe.json}): what
     * continuing that model must use, since another recipe's shapes do not fit its weights.
     */
    public static BaseModelRecipe recordedIn(Path model) throws IOException {
        Path file = model.resolve("recipe.json");
        if (!Files.isRegularFile(file)) throw new IOException(model + ": no recipe.json (not a model exported by pretrain)");
        JsonNode recipe;
        try {
            recipe = JSON.readTree(file.toFile()).path("recipe");
        } catch (IOException e) {
            throw new IOException(file + ": not readable as JSON: " + e.getMessage(), e);
        }
        if (!recipe.isObject()) throw new IOException(file + ": no \"recipe\" object");
        try {
            return JSON.treeToValue(recipe, BaseModelRecipe.class);
        } catch (JsonProcessingException e) {
            String field = e instanceof JsonMappingException m && !m.getPath().isEmpty()
                    ? " (" + m.getPath().stream().map(r -> r.getFieldName() != null ? r.getFieldName() : "[" + r.getIndex() + "]").collect(Collectors.joining(".")) + ")" : "";
            throw new IOException(file + ": its \"recipe\" is not a recipe this version reads" + field + ": " + e.getOriginalMessage(), e);
        }
    }

    /** The shapes that decide which weights fit: two recipes with the same architecture can continue each other's models. */
    public String architecture() {
        return "text encoder " + textHidden + "x" + textLayers + "x" + textHeads + " (" + textMaxLength + " tokens), UNet " + unetChannels + "x" + unetLayersPerBlock
                + " heads " + unetHeads + ", VAE " + vaeChannels + " -> " + latentChannels + " channels, " + imageSize + "x" + imageSize + " pictures";
    }

    /** Whether the text encoder comes from the contrastive stage and stays frozen while the UNet learns. */
    public boolean frozenTextEncoder() {
        return contrastive != null;
    }

    public BaseModelRecipe withContrastive(Contrastive c) {
        return with(r -> r.contrastive = c);
    }

    /**
     * With the diffusion stage's loss plus {@link AttentionLocalization}'s at this weight (0: none) and in this form:
     * each object word of a caption is read by its own object's pixels.
     */
    public BaseModelRecipe withAttentionLocalization(double weight, Localization form) {
        if (!(weight >= 0) || Double.isInfinite(weight)) throw new IllegalArgumentException("attention localization weight " + weight + ": expected a finite number >= 0");
        return with(r -> {
            r.attentionLocalization = weight;
            r.localizationForm = form;
        });
    }

    /**
     * With attention localization also asking a caption's detail words (the pattern's adjective, the accessory and its
     * colour) to be read by their object's pixels, as its class and colour words are: a UNet left to itself reads them
     * hardly at all (README), so nothing it draws depends on them.
     */
    public BaseModelRecipe withLocalizedDetails(boolean on) {
        return with(r -> r.localizedDetails = on);
    }

    /**
     * With the diffusion stage's loss weighted 1 + {@code weight} at the latent pixels an object's accessory covers (0:
     * even): a bow is a latent pixel or two of a picture, too little of the loss for the UNet to learn the words that
     * say which accessory it is (README: it reads "bow" hardly at all).
     */
    public BaseModelRecipe withAccessoryLossWeight(double weight) {
        if (!(weight >= 0) || Double.isInfinite(weight)) throw new IllegalArgumentException("accessory loss weight " + weight + ": expected a finite number >= 0");
        return with(r -> r.accessoryLossWeight = weight);
    }

    /**
     * With the diffusion stage's UNet computing in bf16 ({@link dev.perfusion.tensor.Autocast}: its matrix products and
     * convolutions; attention, the loss, the weights, their gradients and the optimizer stay fp32). On a CPU with AMX
     * a step took 0.83x the fp32 one at 64x64 pictures and 0.78x at 128 (README, Benchmarks); without native bf16 it is slower.
     */
    public BaseModelRecipe withBf16(boolean on) {
        return with(r -> r.bf16 = on);
    }

    /** Another size of text encoder (the UNet's cross-attention follows its width). */
    public BaseModelRecipe withText(int hidden, int layers, int heads) {
        return with(r -> {
            r.textHidden = hidden;
            r.textLayers = layers;
            r.textHeads = heads;
            if (contrastive != null) r.contrastive = contrastive.withProjection(hidden);
        });
    }

    /**
     * Other channels per UNet level, one entry per level: each level after the first halves the latents, so there
     * may be as many as the latents can be halved into (cross-attention at every level but the deepest, as SD).
     */
    public BaseModelRecipe withUnetChannels(List<Integer> channels) {
        int latents = latentSize();
        if (channels.size() < 2 || latents % (1 << (channels.size() - 1)) != 0 || latents >> (channels.size() - 1) < 2) {
            throw new IllegalArgumentException("UNet channels " + channels + ": " + channels.size() + " levels do not fit " + latents + "x" + latents
                    + " latents (at least 2 levels, each after the first halving them, the deepest at least 2x2)");
        }
        for (int c : channels) {
            if (c < 1 || c % UNET_NORM_GROUPS != 0 || c % unetHeads != 0) {
                throw new IllegalArgumentException("UNet channels " + channels + ": each must be a positive multiple of its " + UNET_NORM_GROUPS
                        + " norm groups and " + unetHeads + " attention heads");
            }
        }
        return with(r -> r.unetChannels = List.copyOf(channels));
    }

    /** Another number of resnets (each with its attention where the level has one) per UNet level. */
    public BaseModelRecipe withUnetLayersPerBlock(int layers) {
        if (layers < 1) throw new IllegalArgumentException("UNet layers per level " + layers + ": expected at least 1");
        return with(r -> r.unetLayersPerBlock = layers);
    }

    /**
     * Another picture size: a multiple of the VAE's factor (2^(levels - 1)) and of the image tower's; the latents
     * follow (size / the VAE's factor), and the UNet, convolutional, draws them at any size.
     */
    public BaseModelRecipe withImageSize(int size) {
        int factor = 1 << (vaeChannels.size() - 1), tower = contrastive == null ? 1 : 1 << (contrastive.imageChannels().size() - 1);
        if (size < 8 || size % factor != 0 || size % tower != 0) {
            throw new IllegalArgumentException("picture size " + size + ": expected at least 8 and a multiple of the VAE's factor " + factor
                    + (tower > 1 ? " and of the image tower's " + tower : ""));
        }
        return with(r -> r.imageSize = size);
    }

    /**
     * Another VAE: {@code channels} per level (each level after the first halves the picture, so n levels give latents
     * of size / 2^(n-1)) onto {@code latent} channels; the UNet's input and output follow the latent channels.
     */
    public BaseModelRecipe withVae(List<Integer> channels, int latent) {
        if (channels.isEmpty()) throw new IllegalArgumentException("VAE channels: expected at least one level");
        for (int c : channels) {
            if (c < 1 || c % vaeGroups != 0) {
                throw new IllegalArgumentException("VAE channels " + channels + ": each must be a positive multiple of its " + vaeGroups + " norm groups");
            }
        }
        if (latent < 1) throw new IllegalArgumentException("latent channels " + latent + ": expected at least 1");
        if (imageSize % (1 << (channels.size() - 1)) != 0) {
            throw new IllegalArgumentException("VAE channels " + channels + ": " + channels.size() + " levels do not divide " + imageSize + "x" + imageSize + " pictures");
        }
        return with(r -> {
            r.vaeChannels = List.copyOf(channels);
            r.latentChannels = latent;
        });
    }

    /**
     * With the decoder stage's L1 loss joined by a patch critic's ({@link AdversarialLoss}) at this weight of its
     * gradient at the decoder's last layer (0: L1 alone), as SD's VAE: sharp small parts instead of their average.
     */
    public BaseModelRecipe withDecoderAdversarial(double weight) {
        if (!(weight >= 0) || Double.isInfinite(weight)) throw new IllegalArgumentException("decoder adversarial weight " + weight + ": expected a finite number >= 0");
        return with(r -> {
            r.decoderAdversarialWeight = weight;
            if (weight == 0) r.decoderCriticAlone = null; // no critic, nothing of it recorded
        });
    }

    /**
     * With the decoder stage's patch critic learning alone for this many steps before the decoder learns from it (SD's
     * {@code disc_start}), instead of {@link AdversarialLoss#CRITIC_ALONE}.
     */
    public BaseModelRecipe withDecoderCriticAlone(int steps) {
        if (steps < 0) throw new IllegalArgumentException("decoder critic alone " + steps + ": expected a number of steps >= 0");
        return with(r -> r.decoderCriticAlone = steps == AdversarialLoss.CRITIC_ALONE ? null : steps); // the default recorded as every recipe before it
    }

    /** The decoder stage's steps in which its patch critic learns alone ({@link #withDecoderCriticAlone}). */
    public int criticAloneSteps() {
        return decoderCriticAlone == null ? AdversarialLoss.CRITIC_ALONE : decoderCriticAlone;
    }

    /**
     * With this share of the loose captions naming the object's pattern and, independently, its accessory
     * ({@link dev.perfusion.world.CaptionGrammar#looseCaption}); 0, as before, names neither. The tokenizer then
     * has their words too, so a text encoder trained without them cannot read such captions.
     */
    public BaseModelRecipe withCaptionDetails(double share) {
        if (!(share >= 0 && share <= 1)) throw new IllegalArgumentException("caption details " + share + ": expected a share in [0, 1]");
        return with(r -> r.captionDetails = share);
    }

    /**
     * With the diffusion stage's loose captions leaving out only the middle placement ("in the middle"), as they leave
     * out only the medium size: a caption that names no place then means the middle, as the evaluation's reference
     * pictures take it, instead of any of five places, which a small UNet blends into two objects stacked or side by
     * side. The contrastive stage's captions stay as they are, so a continued model keeps its frozen text encoder.
     */
    public BaseModelRecipe withUnnamedPlacementMiddle(boolean on) {
        return with(r -> r.unnamedPlacementMiddle = on);
    }

    public BaseModelRecipe withSteps(int vae, int diffusion, int decoder) {
        return with(r -> {
            r.vaeSteps = vae;
            r.diffusionSteps = diffusion;
            r.decoderSteps = decoder;
            r.warmupSteps = Math.min(warmupSteps, diffusion);
        });
    }

    /** A few steps of the same model, for tests. */
    public BaseModelRecipe quick(int vae, int diffusion) {
        return with(r -> {
            r.vaeSteps = vae;
            r.vaeBatch = Math.min(vaeBatch, 4);
            r.decoderSteps = vae;
            r.diffusionSteps = diffusion;
            r.diffusionBatch = Math.min(diffusionBatch, 4);
            r.warmupSteps = Math.min(warmupSteps, diffusion);
            if (contrastive != null) r.contrastive = contrastive.quick(diffusion);
        });
    }

    /** This recipe with some of its settings changed: records have no withers, so each {@code with...} edits a copy. */
    private BaseModelRecipe with(Consumer<Settings> change) {
        Settings r = new Settings(this);
        change.accept(r);
        return r.recipe();
    }

    /** A recipe's settings, to be changed and made into a new recipe. */
    private static final class Settings {
        int imageSize, textHidden, textLayers, textHeads, textMaxLength, unetLayersPerBlock, unetHeads, vaeGroups, latentChannels;
        int vaeSteps, vaeBatch, decoderSteps, diffusionSteps, diffusionBatch, warmupSteps;
        List<Integer> unetChannels, vaeChannels;
        double vaeLr, diffusionLr, emaDecay, captionDropout, minSnrGamma, weightDecay, attentionLocalization, decoderAdversarialWeight, captionDetails,
                accessoryLossWeight;
        long seed;
        Contrastive contrastive;
        Localization localizationForm;
        boolean localizedDetails, bf16, unnamedPlacementMiddle;
        Integer decoderCriticAlone;

        Settings(BaseModelRecipe r) {
            imageSize = r.imageSize;
            textHidden = r.textHidden;
            textLayers = r.textLayers;
            textHeads = r.textHeads;
            textMaxLength = r.textMaxLength;
            unetChannels = r.unetChannels;
            unetLayersPerBlock = r.unetLayersPerBlock;
            unetHeads = r.unetHeads;
            vaeChannels = r.vaeChannels;
            vaeGroups = r.vaeGroups;
            latentChannels = r.latentChannels;
            vaeSteps = r.vaeSteps;
            vaeBatch = r.vaeBatch;
            vaeLr = r.vaeLr;
            decoderSteps = r.decoderSteps;
            diffusionSteps = r.diffusionSteps;
            diffusionBatch = r.diffusionBatch;
            diffusionLr = r.diffusionLr;
            warmupSteps = r.warmupSteps;
            emaDecay = r.emaDecay;
            captionDropout = r.captionDropout;
            minSnrGamma = r.minSnrGamma;
            weightDecay = r.weightDecay;
            seed = r.seed;
            contrastive = r.contrastive;
            attentionLocalization = r.attentionLocalization;
            localizationForm = r.localizationForm;
            decoderAdversarialWeight = r.decoderAdversarialWeight;
            captionDetails = r.captionDetails;
            localizedDetails = r.localizedDetails;
            accessoryLossWeight = r.accessoryLossWeight;
            bf16 = r.bf16;
            decoderCriticAlone = r.decoderCriticAlone;
            unnamedPlacementMiddle = r.unnamedPlacementMiddle;
        }

        BaseModelRecipe recipe() {
            return new BaseModelRecipe(imageSize, textHidden, textLayers, textHeads, textMaxLength, unetChannels, unetLayersPerBlock, unetHeads,
                    vaeChannels, vaeGroups, latentChannels, vaeSteps, vaeBatch, vaeLr, decoderSteps,
                    diffusionSteps, diffusionBatch, diffusionLr, warmupSteps, emaDecay, captionDropout, minSnrGamma, weightDecay, seed,
                    contrastive, attentionLocalization, localizationForm, decoderAdversarialWeight, captionDetails, localizedDetails, accessoryLossWeight, bf16,
                    decoderCriticAlone, unnamedPlacementMiddle);
        }
    }

    public int latentSize() {
        return imageSize >> (vaeChannels.size() - 1);
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    /** This recipe but how many steps each stage trains: what a run resumed from a stage's checkpoint must share with it. */
    public ObjectNode withoutStepCounts() {
        return withoutStepCounts(JSON.valueToTree(this));
    }

    /** The same of a recipe recorded as JSON (a checkpoint's, written with or without its step counts). */
    static ObjectNode withoutStepCounts(String recorded) throws java.io.IOException {
        return withoutStepCounts((ObjectNode) JSON.readTree(recorded));
    }

    private static ObjectNode withoutStepCounts(ObjectNode n) {
        // warm-ups are capped at their stage's steps: a resumed run keeps the one it began with (its checkpoint's)
        n.remove(List.of("vaeSteps", "decoderSteps", "diffusionSteps", "warmupSteps"));
        if (n.get("contrastive") instanceof ObjectNode c) c.remove(List.of("steps", "warmupSteps"));
        return n;
    }

    /**
     * Where a recorded recipe's JSON and {@code now} differ; both read from text, so that a number compares by value
     * whatever node type held it.
     */
    static List<String> differences(String recorded, JsonNode now) throws java.io.IOException {
        return differences(JSON.readTree(recorded), JSON.readTree(now.toString()), "");
    }

    /** Where two recipes' JSON differ ("diffusionLr 8.0E-4, now 0.001"), nested fields named with their path; empty where they agree. */
    static List<String> differences(JsonNode then, JsonNode now, String path) {
        List<String> out = new java.util.ArrayList<>();
        java.util.Set<String> names = new java.util.LinkedHashSet<>();
        then.fieldNames().forEachRemaining(names::add);
        now.fieldNames().forEachRemaining(names::add);
        for (String name : names) {
            JsonNode a = then.get(name), b = now.get(name);
            if (a != null && b != null && a.isObject() && b.isObject()) out.addAll(differences(a, b, path + name + "."));
            else if (a == null || !a.equals(b)) out.add(path + name + " " + (a == null ? "unset" : a) + ", now " + (b == null ? "unset" : b));
        }
        return out;
    }

    /** 32 channels at the top level: two per group (a wider UNet keeps the count, UNetWidening). */
    static final int UNET_NORM_GROUPS = 16;

    public ObjectNode textEncoderJson(int vocabSize, int bosId, int eosId, int padId) {
        ObjectNode n = JSON.createObjectNode();
        n.put("_name_or_path", "perfusion-world-base");
        n.putArray("architectures").add(frozenTextEncoder() ? "CLIPTextModelWithProjection" : "CLIPTextModel");
        n.put("model_type", "clip_text_model");
        n.put("vocab_size", vocabSize);
        n.put("hidden_size", textHidden);
        n.put("intermediate_size", 4 * textHidden);
        n.put("num_hidden_layers", textLayers);
        n.put("num_attention_heads", textHeads);
        n.put("max_position_embeddings", textMaxLength);
        n.put("hidden_act", "quick_gelu");
        n.put("layer_norm_eps", 1e-5);
        n.put("projection_dim", frozenTextEncoder() ? contrastive.projectionDim() : textHidden);
        n.put("bos_token_id", bosId);
        n.put("eos_token_id", eosId);
        n.put("pad_token_id", padId);
        n.put("torch_dtype", "float16");
        return n;
    }

    public ObjectNode unetJson() {
        ObjectNode n = JSON.createObjectNode();
        n.put("_class_name", "UNet2DConditionModel");
        n.put("_diffusers_version", "0.27.2");
        n.put("sample_size", latentSize());
        n.put("in_channels", latentChannels);
        n.put("out_channels", latentChannels);
        ints(n.putArray("block_out_channels"), unetChannels);
        n.put("layers_per_block", unetLayersPerBlock);
        ArrayNode down = n.putArray("down_block_types"), up = n.putArray("up_block_types");
        // as SD: cross-attention at every level but the deepest, which the mid block's attention covers
        for (int i = 0; i < unetChannels.size(); i++) {
            down.add(i < unetChannels.size() - 1 ? "CrossAttnDownBlock2D" : "DownBlock2D");
            up.add(i == 0 ? "UpBlock2D" : "CrossAttnUpBlock2D");
        }
        n.put("mid_block_type", "UNetMidBlock2DCrossAttn");
        n.put("cross_attention_dim", textHidden);
        n.put("attention_head_dim", unetHeads);
        n.put("norm_num_groups", UNET_NORM_GROUPS);
        n.put("flip_sin_to_cos", true);
        n.put("freq_shift", 0);
        return n;
    }

    public ObjectNode vaeJson(double scalingFactor) {
        ObjectNode n = JSON.createObjectNode();
        n.put("_class_name", "AutoencoderKL");
        n.put("_diffusers_version", "0.27.2");
        n.put("in_channels", 3);
        n.put("out_channels", 3);
        ints(n.putArray("block_out_channels"), vaeChannels);
        ArrayNode down = n.putArray("down_block_types"), up = n.putArray("up_block_types");
        for (int i = 0; i < vaeChannels.size(); i++) {
            down.add("DownEncoderBlock2D");
            up.add("UpDecoderBlock2D");
        }
        n.put("layers_per_block", 1);
        n.put("latent_channels", latentChannels);
        n.put("norm_num_groups", vaeGroups);
        n.put("act_fn", "silu");
        n.put("sample_size", imageSize);
        n.put("scaling_factor", scalingFactor);
        return n;
    }

    /** SD's training schedule (scaled-linear betas, 1000 steps, epsilon), sampled with DDIM. */
    public ObjectNode schedulerJson() {
        ObjectNode n = JSON.createObjectNode();
        n.put("_class_name", "DDIMScheduler");
        n.put("_diffusers_version", "0.27.2");
        n.put("beta_start", 0.00085);
        n.put("beta_end", 0.012);
        n.put("beta_schedule", "scaled_linear");
        n.put("num_train_timesteps", 1000);
        n.put("prediction_type", "epsilon");
        n.put("clip_sample", false);
        n.put("set_alpha_to_one", false);
        n.put("steps_offset", 1);
        n.put("timestep_spacing", "leading");
        return n;
    }

    public ObjectNode modelIndexJson() {
        ObjectNode n = JSON.createObjectNode();
        n.put("_class_name", "StableDiffusionPipeline");
        n.put("_diffusers_version", "0.27.2");
        n.putArray("scheduler").add("diffusers").add("DDIMScheduler");
        n.putArray("text_encoder").add("transformers").add("CLIPTextModel");
        n.putArray("tokenizer").add("transformers").add("CLIPTokenizer");
        n.putArray("unet").add("diffusers").add("UNet2DConditionModel");
        n.putArray("vae").add("diffusers").add("AutoencoderKL");
        n.put("requires_safety_checker", false);
        return n;
    }

    public ClipTextConfig textEncoderConfig(int vocabSize, int bosId, int eosId, int padId) {
        return ClipTextConfig.fromJson(textEncoderJson(vocabSize, bosId, eosId, padId));
    }

    public UNetConfig unetConfig() {
        return UNetConfig.fromJson(unetJson());
    }

    public ImageTower.Config imageTowerConfig() {
        // the last map's side: one halving per block after the first channel count
        int side = contrastive.attentionPool() ? imageSize >> (contrastive.imageChannels().size() - 1) : 0;
        return new ImageTower.Config(contrastive.imageChannels(), contrastive.imageGroups(), contrastive.projectionDim(), side, contrastive.imageLayers());
    }

    public VaeConfig vaeConfig(double scalingFactor) {
        return VaeConfig.fromJson(vaeJson(scalingFactor));
    }

    public SchedulerConfig schedulerConfig() {
        return SchedulerConfig.fromJson(schedulerJson());
    }

    private static void ints(ArrayNode a, List<Integer> xs) {
        for (int x : xs) a.add(x);
    }
}
