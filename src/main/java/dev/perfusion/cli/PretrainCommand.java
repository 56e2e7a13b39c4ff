package dev.perfusion.cli;

import dev.perfusion.util.Stopping;
import dev.perfusion.pretrain.BaseModelRecipe;
import dev.perfusion.pretrain.Pretrainer;
import dev.perfusion.tensor.CpuFeatures;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "pretrain", mixinStandardHelpOptions = true,
        description = {"Train the bundled base model from scratch.",
                "On the synthetic world: the VAE, then the text encoder and UNet; about two hours on 2 CPU cores; checkpoints often, and a rerun with "
                        + "the same --work resumes."})
final class PretrainCommand implements Callable<Integer> {
    @Option(names = "--work", defaultValue = "pretrain-work", paramLabel = "DIR",
            description = "Work folder: checkpoint, losses.csv, samples/, and the finished model/ (default: ${DEFAULT-VALUE}).") Path work;
    @Option(names = "--max-minutes", defaultValue = "0", description = "Checkpoint and stop after this many minutes (0: run to the end); run again to resume.") double maxMinutes;
    @Option(names = "--vae-steps", description = "Override the recipe's VAE steps.") Integer vaeSteps;
    @Option(names = "--train-steps", description = "Override the recipe's training steps of the text encoder and UNet.") Integer trainSteps;
    @Option(names = "--decoder-steps", description = "Override the recipe's decoder fine-tuning steps.") Integer decoderSteps;
    @Option(names = "--decoder-adversarial", paramLabel = "W", description = "The decoder stage learns against a patch critic too, as SD's VAE "
            + "(hinge loss; the decoder's term weighted to W times the L1 loss's gradient at its last layer), so that small parts are drawn sharp "
            + "instead of averaged away (0: L1 alone, the default).") Double decoderAdversarial;
    @Option(names = "--decoder-critic-alone", paramLabel = "STEPS", description = "With --decoder-adversarial: the decoder stage's first STEPS steps "
            + "train the critic alone, so that its first judgements of the decoder mean something (SD's disc_start; default: 300).") Integer decoderCriticAlone;
    @Option(names = "--decoder-only", description = "Run only the decoder fine-tuning stage (it needs only the VAE stage, so it may run beside the diffusion stage in a second process).") boolean decoderOnly;
    @Option(names = "--continue-from", paramLabel = "MODEL", description = "Train the text encoder and UNet further from this exported model (its tokenizer and VAE are kept) for --train-steps more steps.") Path continueFrom;
    @Option(names = "--new-unet", description = "With --continue-from: keep only the model's tokenizer, text encoder and VAE; the UNet is a new one "
            + "of the recipe's shape (--unet-channels, --unet-layers), trained from scratch for --train-steps (e.g. a UNet with a level more for larger latents).") boolean newUnet;
    @Option(names = "--train-vae", description = "With --continue-from: the model's VAE trains further first, from its weights (--vae-steps, then --decoder-steps of its decoder alone), and the UNet then learns the moved latent space.") boolean trainVae;
    @Option(names = "--recipe", paramLabel = "NAME", description = "frozen-text: first a CLIP for the world (text tower + image tower, contrastive loss), then the UNet "
            + "alone on its frozen text encoder, as SD (the shipped model); standard: the text encoder and UNet learn together (the previous model). "
            + "Default: the recipe recorded in --continue-from's model, else frozen-text.") String recipeName;
    @Option(names = "--contrastive-steps", description = "Override the frozen-text recipe's contrastive steps.") Integer contrastiveSteps;
    @Option(names = "--own-token-weight", paramLabel = "W", description = "With --recipe frozen-text: add the own-token objective at this weight "
            + "beside the contrastive loss (each word's output must name its own token; it keeps the words after a concept word about themselves).")
    Double ownTokenWeight;
    @Option(names = "--swapped-side-negatives", description = "With --recipe frozen-text: every caption that names a side is also read with "
            + "left and right swapped, as a wrong answer for the pictures (NegCLIP's hard negatives), so that the text encoder must say which object is on which side.")
    boolean swappedSideNegatives;
    @Option(names = "--accessory-negatives", description = "With --recipe frozen-text and captions that name details: every caption that names "
            + "an accessory ('with a blue bow') is also read with another accessory in its place, as a wrong answer for the pictures, which asks the "
            + "towers to see which accessory an object wears and the text encoder to encode the accessory words apart.")
    boolean accessoryNegatives;
    @Option(names = "--image-tower-layers", paramLabel = "N", description = "With --recipe frozen-text: N residual blocks after each of the image "
            + "tower's halvings (default 0, as the shipped towers), so that it is deep enough to see small parts such as an accessory.")
    Integer imageTowerLayers;
    @Option(names = "--image-attention-pool", description = "With --recipe frozen-text: the image tower pools its last map by attention over "
            + "learned positions (CLIP ResNet's attention pool) instead of a mean, so that it sees where things are.")
    boolean imageAttentionPool;
    @Option(names = "--side-word-weight", paramLabel = "SHARE", description = "With --recipe frozen-text: the own-token objective weighs the side words "
            + "('left', 'right') by this share of its weight (0: free), so that a side word may say which object it follows (the full objective erases that).")
    Double sideWordWeight;
    @Option(names = "--colour-binding-weight", paramLabel = "SHARE", description = "With --recipe frozen-text: beside the own-token objective, "
            + "an object word right after a colour word must also name that colour, at this share of the objective's weight (0: not at all, the "
            + "default), so that the object word's encoding says which colour it is.")
    Double colourBindingWeight;
    @Option(names = "--own-token-padding", negatable = true, description = "With --recipe frozen-text: the own-token objective covers the padding too, so that "
            + "padding names its own token instead of summarising the caption (a trained concept's i* then does not reach it). On in the "
            + "frozen-text recipe since 2026-12-03; --no-own-token-padding trains the towers as before.")
    Boolean ownTokenPadding;
    @Option(names = "--attention-localization", paramLabel = "W", description = "Add FastComposer's cross-attention localization loss at this weight "
            + "to the diffusion stage: each word that names an object (its colour and class) is read by that object's pixels more than by the rest "
            + "of the picture, so that the two objects of a pair do not both read both object words (0: none; default: the recipe's).")
    Double attentionLocalization;
    @Option(names = "--localization-form", paramLabel = "FORM", converter = Choices.LocalizationForm.class, completionCandidates = Choices.LocalizationForm.class,
            description = "With --attention-localization, one of ${COMPLETION-CANDIDATES}: gap (FastComposer's: a word's mean attention outside its "
            + "object minus inside, which also rewards reading it more) or share (the share of its map, scaled to sum 1, outside its object) "
            + "(default: the recipe's, gap).")
    BaseModelRecipe.Localization localizationForm;
    @Option(names = "--unet-layers", paramLabel = "N", description = "Resnets per UNet level, each with its attention where the level has one "
            + "(default: the recipe's, 1). With --continue-from, more than the model has deepens its UNet: the new layers start as the identity, "
            + "so it draws what it drew and learns on with more capacity.") Integer unetLayers;
    @Option(names = "--unet-channels", paramLabel = "C1,C2,...", description = "Channels per UNet level (default: the recipe's, 32,64,128). "
            + "With --continue-from, k times the model's at every level widens its UNet: each channel is repeated k times and the layers that read "
            + "them share their weights among the copies, so it draws what it drew and learns on with k^2 times the weights (and compute) per layer; "
            + "the model's channels with the deepest repeated (e.g. 32,64,128,128) adds a level at the bottom for larger latents, started near what it drew.")
    String unetChannels;
    @Option(names = "--image-size", paramLabel = "N", description = "Pictures of NxN pixels (default: the recipe's, 64). With --continue-from, "
            + "the model's VAE and UNet, both convolutional, at that size: its latents grow with the pictures (128 gives 32x32 latents at the VAE's "
            + "factor 4, four times the UNet's work per picture); or, with --vae-size, a new VAE whose levels keep the model's latents (e.g. "
            + "--image-size 128 --vae-size 32,64,64,64x8: factor 8, 16x16 latents, as SD).") Integer imageSize;
    @Option(names = "--vae-size", paramLabel = "C1,C2,...xLATENT", description = "Another VAE: channels per level "
            + "(each level after the first halves the picture) and latent channels, e.g. 64,128,128x8 (default: the recipe's, 32,64,64x8 frozen-text, 32,64,64x4 standard). "
            + "With --continue-from, a new VAE trained from scratch under the model's UNet, which keeps its weights but for the layers that "
            + "read and write latents (the latents' size must stay).")
    String vaeSize;
    @Option(names = "--localize-details", negatable = true, description = "Attention localization also asks a caption's detail words (the "
            + "pattern's adjective, the accessory and its colour) to be read by their object's pixels, as its class and colour words are "
            + "(needs attention localization and captions that name details; recorded, so a continued model keeps it).") Boolean localizeDetails;
    @Option(names = "--accessory-loss-weight", paramLabel = "W", description = "The diffusion stage weighs its loss 1 + W at the latent pixels "
            + "an object's accessory covers (the renderer draws each object again without it; where the two differ is the accessory), so that "
            + "a UNet that does not read the accessory's words pays for it (default: the recipe's, 0).") Double accessoryLossWeight;
    @Option(names = "--caption-details", paramLabel = "SHARE", description = "The share of the loose captions that also name the object's pattern "
            + "and, independently, its accessory (\"a spotted white dog with a red scarf\"), so that the UNet learns words for them and a concept can "
            + "draw them (default: the recipe's; 0 names neither). With --continue-from a model trained with another share: its tokenizer and text "
            + "encoder are trained anew (the contrastive stage runs) and its UNet is the start.") Double captionDetails;
    @Option(names = "--unnamed-placement-middle", negatable = true, description = "The diffusion stage's short captions leave out only the middle "
            + "placement, as they leave out only the medium size, so that a prompt that names no place (\"a teddy in the forest\") means the middle "
            + "instead of any of the five places, which a small UNet blends into two objects (default: the recipe's, off). The contrastive stage's "
            + "captions stay as they are: with --continue-from a model's frozen text encoder is kept.") Boolean unnamedPlacementMiddle;
    @Option(names = "--contrastive-only", description = "With --recipe frozen-text: run only the contrastive stage (its towers land in --work; measure them with s-profile --model WORK).") boolean contrastiveOnly;
    @Option(names = "--text-size", paramLabel = "WIDTHxLAYERSxHEADS", description = "Another text encoder size, e.g. 256x6x4 (default: the recipe's, 128x4x4 standard, 128x2x4 frozen-text).") String textSize;
    /** What the diffusion stage's UNet computes in. */
    enum Precision { FP32, BF16 }

    @Option(names = "--precision", converter = Choices.PretrainingPrecision.class, completionCandidates = Choices.PretrainingPrecision.class,
            description = "What the diffusion stage's UNet computes in: ${COMPLETION-CANDIDATES}. bf16 computes its matrix products and convolutions "
                    + "in bf16 (mixed precision: attention, the loss, the weights, their gradients and the optimizer stay fp32), faster on CPUs with "
                    + "AVX512-BF16 or AMX (default: the recipe's, fp32).") Precision precision;
    @Option(names = "--checkpoint-every", defaultValue = "250", description = "Steps between checkpoints in --work, which a rerun resumes from (0: only when --max-minutes stops the run; default: ${DEFAULT-VALUE}).") int checkpointEvery;
    @Option(names = "--sample-every", defaultValue = "1000", description = "Write a sample grid every this many steps (0: only at each stage's end; default: ${DEFAULT-VALUE}).") int sampleEvery;

    /** The recipe this run trains: the named or recorded one, with the options' changes. */
    BaseModelRecipe recipe() throws java.io.IOException {
        BaseModelRecipe recipe = recipeName != null ? Flags.named("--recipe", () -> BaseModelRecipe.named(recipeName))
                : continueFrom != null ? BaseModelRecipe.recordedIn(continueFrom) : BaseModelRecipe.frozenText();
        if (textSize != null) {
            String[] f = textSize.split("x");
            if (f.length != 3) throw new IllegalArgumentException("--text-size must be WIDTHxLAYERSxHEADS, e.g. 256x6x4, got " + textSize);
            recipe = recipe.withText(Integer.parseInt(f[0]), Integer.parseInt(f[1]), Integer.parseInt(f[2]));
        }
        if (unetLayers != null) {
            BaseModelRecipe shallower = recipe;
            recipe = Flags.named("--unet-layers", () -> shallower.withUnetLayersPerBlock(unetLayers));
        }
        if (unetChannels != null) {
            List<Integer> channels = Flags.named("--unet-channels", () -> integers(unetChannels, "C1,C2,..., e.g. 64,128,256"));
            BaseModelRecipe narrower = recipe;
            recipe = Flags.named("--unet-channels", () -> narrower.withUnetChannels(channels));
        }
        if (vaeSize != null) {
            String[] f = vaeSize.split("x");
            if (f.length != 2) throw new IllegalArgumentException("--vae-size must be C1,C2,...xLATENT, e.g. 64,128,128x8, got " + vaeSize);
            String expected = "C1,C2,...xLATENT, e.g. 64,128,128x8";
            List<Integer> channels = Flags.named("--vae-size", () -> integers(f[0], expected)), latents = Flags.named("--vae-size", () -> integers(f[1], expected));
            if (latents.size() != 1) throw new IllegalArgumentException("--vae-size: expected " + expected + ", got " + vaeSize);
            int latent = latents.get(0);
            BaseModelRecipe before = recipe;
            recipe = Flags.named("--vae-size", () -> before.withVae(channels, latent));
        }
        if (imageSize != null) {
            BaseModelRecipe before = recipe; // after --vae-size, whose levels the size must fit
            recipe = Flags.named("--image-size", () -> before.withImageSize(imageSize));
        }
        if (contrastiveOnly) contrastive(recipe, "--contrastive-only");
        if (contrastiveSteps != null) recipe = recipe.withContrastive(contrastive(recipe, "--contrastive-steps").withSteps(contrastiveSteps));
        if (ownTokenWeight != null) {
            recipe = recipe.withContrastive(contrastive(recipe, "--own-token-weight").withOwnTokenWeight(ownTokenWeight));
        }
        if (swappedSideNegatives) {
            recipe = recipe.withContrastive(contrastive(recipe, "--swapped-side-negatives").withSwappedSideNegatives(true));
        }
        if (imageAttentionPool) {
            recipe = recipe.withContrastive(contrastive(recipe, "--image-attention-pool").withAttentionPool(true));
        }
        if (sideWordWeight != null) {
            if (!(sideWordWeight >= 0 && sideWordWeight <= 1)) throw new IllegalArgumentException("--side-word-weight must be in [0, 1], got " + sideWordWeight);
            recipe = recipe.withContrastive(contrastive(recipe, "--side-word-weight").withSideWordWeight(sideWordWeight));
        }
        if (colourBindingWeight != null) {
            if (!(colourBindingWeight >= 0)) throw new IllegalArgumentException("--colour-binding-weight must be at least 0, got " + colourBindingWeight);
            BaseModelRecipe.Contrastive c = contrastive(recipe, "--colour-binding-weight");
            if (colourBindingWeight > 0 && c.ownTokenWeight() <= 0) throw new IllegalArgumentException("--colour-binding-weight needs the own-token objective on (--own-token-weight above 0)");
            recipe = recipe.withContrastive(c.withColourBindingWeight(colourBindingWeight));
        }
        if (ownTokenPadding != null) {
            BaseModelRecipe.Contrastive c = contrastive(recipe, "--[no-]own-token-padding");
            if (ownTokenPadding && c.ownTokenWeight() <= 0) throw new IllegalArgumentException("--own-token-padding needs the own-token objective on (--own-token-weight above 0)");
            recipe = recipe.withContrastive(c.withOwnTokenPadding(ownTokenPadding));
        }
        if (localizationForm != null && attentionLocalization == null) throw new IllegalArgumentException("--localization-form needs --attention-localization W");
        if (attentionLocalization != null) {
            BaseModelRecipe.Localization form = localizationForm == null ? recipe.localization() : localizationForm;
            BaseModelRecipe before = recipe;
            recipe = Flags.named("--attention-localization", () -> before.withAttentionLocalization(attentionLocalization, form));
        }
        if (captionDetails != null) {
            BaseModelRecipe before = recipe;
            recipe = Flags.named("--caption-details", () -> before.withCaptionDetails(captionDetails));
        }
        if (imageTowerLayers != null) {
            BaseModelRecipe.Contrastive c = contrastive(recipe, "--image-tower-layers");
            recipe = recipe.withContrastive(Flags.named("--image-tower-layers", () -> c.withImageLayers(imageTowerLayers)));
        }
        if (accessoryNegatives) {
            if (!(recipe.captionDetails() > 0)) throw new IllegalArgumentException("--accessory-negatives needs captions that name details (--caption-details SHARE)");
            recipe = recipe.withContrastive(contrastive(recipe, "--accessory-negatives").withAccessoryNegatives(true));
        }
        if (localizeDetails != null) {
            if (localizeDetails && !(recipe.attentionLocalization() > 0 && recipe.captionDetails() > 0)) {
                throw new IllegalArgumentException("--localize-details needs attention localization (--attention-localization W) and captions that name details (--caption-details SHARE)");
            }
            recipe = recipe.withLocalizedDetails(localizeDetails);
        } else if (!(recipe.attentionLocalization() > 0 && recipe.captionDetails() > 0)) {
            recipe = recipe.withLocalizedDetails(false); // the default's, where the options leave no detail words to localize
        }
        if (accessoryLossWeight != null) {
            BaseModelRecipe before = recipe;
            recipe = Flags.named("--accessory-loss-weight", () -> before.withAccessoryLossWeight(accessoryLossWeight));
        }
        if (decoderAdversarial != null) {
            BaseModelRecipe before = recipe;
            recipe = Flags.named("--decoder-adversarial", () -> before.withDecoderAdversarial(decoderAdversarial));
        }
        if (decoderCriticAlone != null) {
            if (!(recipe.decoderAdversarialWeight() > 0)) throw new IllegalArgumentException("--decoder-critic-alone needs a patch critic (--decoder-adversarial W)");
            BaseModelRecipe before = recipe;
            recipe = Flags.named("--decoder-critic-alone", () -> before.withDecoderCriticAlone(decoderCriticAlone));
        }
        if (unnamedPlacementMiddle != null) recipe = recipe.withUnnamedPlacementMiddle(unnamedPlacementMiddle);
        if (precision != null) recipe = recipe.withBf16(precision == Precision.BF16);
        if (vaeSteps != null || trainSteps != null || decoderSteps != null) {
            recipe = recipe.withSteps(vaeSteps != null ? vaeSteps : recipe.vaeSteps(), trainSteps != null ? trainSteps : recipe.diffusionSteps(),
                    decoderSteps != null ? decoderSteps : recipe.decoderSteps());
        }
        return recipe;
    }

    /** Comma-separated whole numbers, or an error that says what was {@code expected}. */
    static List<Integer> integers(String text, String expected) {
        try {
            return java.util.Arrays.stream(text.split(",", -1)).map(String::trim).map(Integer::valueOf).toList();
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("expected " + expected + ", got " + text);
        }
    }

    /** The recipe's contrastive stage, which {@code option} changes: only the frozen-text recipe has one. */
    private static BaseModelRecipe.Contrastive contrastive(BaseModelRecipe recipe, String option) {
        if (!recipe.frozenTextEncoder()) throw new IllegalArgumentException(option + " needs --recipe frozen-text");
        return recipe.contrastive();
    }

    @Override
    public Integer call() throws Exception {
        // a stage of no steps would export its untrained weights as finished
        if (trainSteps != null && trainSteps < 1) throw new IllegalArgumentException("--train-steps must be at least 1, got " + trainSteps);
        if (vaeSteps != null && vaeSteps < 1) throw new IllegalArgumentException("--vae-steps must be at least 1, got " + vaeSteps);
        if (contrastiveSteps != null && contrastiveSteps < 1) throw new IllegalArgumentException("--contrastive-steps must be at least 1, got " + contrastiveSteps);
        if (decoderSteps != null && decoderSteps < 0) throw new IllegalArgumentException("--decoder-steps must be 0 (none) or more, got " + decoderSteps);
        if (decoderOnly && contrastiveOnly) throw new IllegalArgumentException("--decoder-only and --contrastive-only each run one stage: give one");
        if (contrastiveOnly && continueFrom != null) {
            throw new IllegalArgumentException("--contrastive-only trains new towers from scratch; --continue-from keeps a model's (give one)");
        }
        if (decoderOnly && (newUnet || trainVae)) throw new IllegalArgumentException("--decoder-only trains the decoder alone: not with --new-unet or --train-vae");
        BaseModelRecipe recipe = recipe();
        if (trainVae && continueFrom == null) throw new IllegalArgumentException("--train-vae needs --continue-from MODEL (a model from scratch trains its VAE anyway)");
        if (newUnet && continueFrom == null) throw new IllegalArgumentException("--new-unet needs --continue-from MODEL (a model from scratch has a new UNet anyway)");
        if (checkpointEvery < 0) throw new IllegalArgumentException("--checkpoint-every must be 0 (none) or more steps, got " + checkpointEvery);
        if (sampleEvery < 0) throw new IllegalArgumentException("--sample-every must be 0 (none) or more steps, got " + sampleEvery);
        if (!(maxMinutes >= 0)) throw new IllegalArgumentException("--max-minutes must be 0 (no limit) or more, got " + maxMinutes);
        FileChecks.writableFolder(work);
        TerminalProgress progress = new TerminalProgress(System.out);
        if (recipe.bf16() && !CpuFeatures.nativeBf16()) {
            progress.message("note: this CPU (" + CpuFeatures.isa() + ") has no native bf16 (AVX512-BF16 or AMX): the UNet's bf16 steps will be slower than fp32's");
        }
        Pretrainer trainer = new Pretrainer(recipe, work, progress).schedule(checkpointEvery, sampleEvery);
        if (maxMinutes > 0) trainer.timeLimit(maxMinutes * 60);
        if (continueFrom != null) trainer.continueFrom(continueFrom, newUnet);
        if (trainVae) trainer.trainVaeFurther();
        Pretrainer.Result r = StopNotice.around(() -> checkpointEvery > 0
                ? work + " keeps each stage's last checkpoint (every " + checkpointEvery + " steps), and the same command goes on from them"
                : work + " keeps no checkpoint of the stage that was running (--checkpoint-every 0); the same command starts that stage again",
                () -> decoderOnly ? trainer.runDecoderStage() : contrastiveOnly ? trainer.runContrastiveStage() : trainer.run());
        String where = r.model() != null && r.model().endsWith("vae-decoder")
                ? "the decoder is in " + r.model() + ", for the main run to install in its model" : "the model is in " + r.model();
        progress.message(r.finished() && Double.isNaN(r.loss())
                ? "finished before, nothing left to train: " + where
                : r.finished()
                ? String.format(Locale.ROOT, "finished in %s (loss %.4f): %s", TerminalProgress.formatSeconds(r.seconds()), r.loss(), where)
                : String.format(Locale.ROOT, "stopped %s, %s step %d (loss %.4f), kept in %s; run the same command to resume",
                        Stopping.requested() ? "from outside" : "at the time limit", r.stage(), r.step(), r.loss(), work));
        return 0;
    }
}
