package dev.perfusion.io.layout;

import com.fasterxml.jackson.databind.JsonNode;
import dev.perfusion.io.StateDict;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Opens the checkpoint layouts users download and presents each component's weights under the names the models
 * use (diffusers/transformers), with the diffusers configs that describe them. This is the one place where other
 * layouts are translated, by rename tables ({@link LdmUnet}, {@link LdmVae}, {@link LdmTextEncoder}).
 * <ul>
 * <li>A diffusers folder: configs and weights are read as they are.</li>
 * <li>A single-file original checkpoint (.safetensors, or a PyTorch .ckpt/.pt read without running it,
 * {@link WeightFile}): the configs come from a config folder if given, else from the built-in family the tensor
 * shapes match ({@link ModelFamily}); the rename tables are generated from those configs and checked against the
 * file.</li>
 * </ul>
 * Only headers (or pickles) are read here; tensors are read when a model loads them. A single file's EMA copies
 * ({@code model_ema.*}) are used for the UNet when the file holds one for every UNet weight, unless the non-EMA
 * weights are asked for ({@link LdmEma}); which set was used is said in {@link ResolvedModel#notes}. Other tensors
 * of a single file outside the three components are ignored: LDM's noise-schedule buffers ({@code betas},
 * {@code alphas_cumprod}, ...) and the text encoder's {@code position_ids} buffer.
 */
public final class ModelSource {
    private ModelSource() {}

    /**
     * What the user may add to a model path.
     *
     * @param configDir    a diffusers folder whose configs describe the model: overrides recognition
     * @param tokenizerDir a folder with vocab.json and merges.txt
     * @param family       a built-in family to use instead of recognising one (single files only), e.g. sd21-v for
     *                     an SD 2.x v-prediction file whose name does not say 768-v
     * @param variant      the diffusers weight variant to prefer, e.g. "fp16"
     * @param nonEma       use a single file's non-EMA UNet weights even when it holds EMA copies
     */
    public record Options(Optional<Path> configDir, Optional<Path> tokenizerDir, Optional<String> family,
                          Optional<String> variant, boolean nonEma) {
        public static Options defaults() {
            return new Options(Optional.empty(), Optional.empty(), Optional.empty(), Optional.empty(), false);
        }

        public Options withConfig(Path dir) { return new Options(Optional.of(dir), tokenizerDir, family, variant, nonEma); }

        public Options withTokenizer(Path dir) { return new Options(configDir, Optional.of(dir), family, variant, nonEma); }

        public Options withFamily(String name) { return new Options(configDir, tokenizerDir, Optional.of(name), variant, nonEma); }

        public Options withVariant(String name) { return new Options(configDir, tokenizerDir, family, Optional.of(name), nonEma); }

        public Options withNonEma() { return new Options(configDir, tokenizerDir, family, variant, true); }
    }

    public static ResolvedModel resolve(Path source) throws IOException {
        return resolve(source, Options.defaults());
    }

    public static ResolvedModel resolve(Path source, Options options) throws IOException {
        options.family().ifPresent(f -> {
            if (!ModelFamily.BUILT_IN.contains(f)) {
                throw new ModelInputException("unknown model family '" + f + "' (built in: "
                        + String.join(", ", ModelFamily.BUILT_IN) + ")", ModelInputException.Input.FAMILY);
            }
            if (options.configDir().isPresent()) {
                throw new ModelInputException("give either a model family (" + f + ") or a config folder, not both",
                        ModelInputException.Input.FAMILY);
            }
        });
        CheckpointLayout layout = CheckpointLayout.of(source);
        return layout == CheckpointLayout.DIFFUSERS_FOLDER ? diffusersFolder(source, options) : singleFile(source, options);
    }

    private static ResolvedModel diffusersFolder(Path folder, Options options) throws IOException {
        if (options.family().isPresent()) {
            throw new ModelInputException(folder + ": a diffusers folder carries its own configs; a model family"
                    + " applies to single-file checkpoints only (a config folder overrides the folder's configs)",
                    ModelInputException.Input.FAMILY);
        }
        ModelConfigs configs = ModelConfigs.fromFolder(options.configDir().orElse(folder));
        StateDict unet = DiffusersFolder.weights(folder.resolve("unet"), options.variant());
        StateDict vae = DiffusersFolder.vaeWeights(folder.resolve("vae"), options.variant());
        StateDict text = DiffusersFolder.weights(folder.resolve("text_encoder"), options.variant());
        return assemble(folder, CheckpointLayout.DIFFUSERS_FOLDER, configs, Optional.of(folder.resolve("tokenizer")),
                options, unet, vae, text, false, List.of());
    }

    private static ResolvedModel singleFile(Path file, Options options) throws IOException {
        StateDict opened = WeightFile.open(file);
        LdmEma.Choice weights = LdmEma.choose(opened, file, !options.nonEma());
        StateDict st = weights.weights();
        Optional<LdmTextEncoder.Layout> textLayout = requireComponents(st, file);
        ModelConfigs configs;
        if (options.configDir().isPresent()) {
            configs = ModelConfigs.fromFolder(options.configDir().get());
        } else {
            configs = ModelConfigs.builtIn(options.family().isPresent() ? checkedFamily(st, file, options.family().get())
                    : ModelFamily.recognize(st, file, safetensorsMetadata(opened)));
        }
        StateDict unet = LdmUnet.view(st, file, configs.unet(), configs.origin());
        StateDict vae = LdmVae.view(st, file, configs.vae(), configs.origin());
        StateDict text = LdmTextEncoder.view(st, file, configs.textEncoder(), configs.origin());
        return assemble(file, CheckpointLayout.SINGLE_FILE, configs, Optional.empty(), options, unet, vae, text,
                textLayout.orElseThrow() == LdmTextEncoder.Layout.OPEN_CLIP, weights.note().stream().toList());
    }

    /** A family the user named, unless the shapes say the file is of the other SD generation. */
    private static String checkedFamily(StateDict file, Path source, String family) {
        ModelFamily.Signature s = ModelFamily.signature(file);
        boolean sd2 = ModelFamily.isSd2(family);
        if ((sd2 && s.isSd1()) || (!sd2 && s.isSd2())) {
            throw new ModelInputException(source + ": model family " + family + " was given, but the file is "
                    + (s.isSd1() ? "SD 1.x" : "SD 2.x") + " (" + s.describe() + ")", ModelInputException.Input.FAMILY);
        }
        return family;
    }

    /** Fails, naming the file, unless it holds a UNet, a VAE and a text encoder under LDM names. */
    private static Optional<LdmTextEncoder.Layout> requireComponents(StateDict file, Path source) {
        boolean unet = file.keys().stream().anyMatch(k -> k.startsWith(LdmUnet.PREFIX));
        boolean vae = file.keys().stream().anyMatch(k -> k.startsWith(LdmVae.PREFIX));
        Optional<LdmTextEncoder.Layout> text = LdmTextEncoder.detect(file);
        if (file.keys().stream().anyMatch(k -> k.startsWith("conditioner.embedders."))) {
            throw new IllegalArgumentException(source + ": this looks like an SDXL checkpoint (conditioner.embedders.*),"
                    + " which is not supported (Stable Diffusion 1.x and 2.x only)");
        }
        if (!unet && !vae && text.isEmpty()) {
            List<String> some = file.keys().stream().sorted().limit(3).toList();
            throw new IllegalArgumentException(source + ": no Stable Diffusion weights: none of its " + file.keys().size()
                    + " tensors is named " + LdmUnet.PREFIX + "*, " + LdmVae.PREFIX + "* or cond_stage_model.*"
                    + (some.isEmpty() ? "" : " (it has e.g. " + String.join(", ", some) + ")")
                    + "; a single-file checkpoint holds UNet, VAE and text encoder (for a diffusers model pass its folder)");
        }
        List<String> missing = new ArrayList<>();
        if (!unet) missing.add("no UNet (" + LdmUnet.PREFIX + "*)");
        if (!vae) missing.add("no VAE (" + LdmVae.PREFIX + "*)");
        if (text.isEmpty()) {
            missing.add("no text encoder (" + LdmTextEncoder.CLIP_PREFIX + "* or " + LdmTextEncoder.OPEN_CLIP_PREFIX + "*)");
        }
        if (!missing.isEmpty()) {
            throw new IllegalArgumentException(source + ": not a complete Stable Diffusion checkpoint: it has "
                    + String.join(", ", missing) + "; single files must hold all three components");
        }
        return text;
    }

    private static ResolvedModel assemble(Path source, CheckpointLayout layout, ModelConfigs configs,
                                          Optional<Path> ownTokenizer, Options options,
                                          StateDict unet, StateDict vae, StateDict text, boolean openClip,
                                          List<String> notesSoFar) throws IOException {
        List<String> notes = new ArrayList<>(notesSoFar);
        Optional<Path> tokenizerDir;
        if (options.tokenizerDir().isPresent()) {
            Path dir = options.tokenizerDir().get();
            if (!hasVocabulary(dir)) {
                throw new IOException(dir + ": not a tokenizer folder: it needs vocab.json and merges.txt");
            }
            tokenizerDir = Optional.of(dir);
        } else {
            tokenizerDir = ownTokenizer.filter(ModelSource::hasVocabulary)
                    .or(() -> configs.folder().map(f -> f.resolve("tokenizer")).filter(ModelSource::hasVocabulary));
        }
        Optional<JsonNode> tokenizerConfig = tokenizerConfig(tokenizerDir.isPresent() ? ModelConfigs.tokenizerConfig(tokenizerDir.get()) : Optional.empty(),
                configs, notes);
        return new ResolvedModel(source, layout, ModelFamily.classify(configs), configs.origin(),
                configs.unet(), configs.vae(), configs.textEncoder(), configs.scheduler().asPipelineUsesIt(notes::add), tokenizerConfig, tokenizerDir,
                unet, vae, text, openClip, configs.folder(), notes);
    }

    /**
     * The special tokens and length prompts are read with: the tokenizer folder's own files, else the configs'. For a
     * single file read with its family's built-in configs the family's win: a folder given for its vocabulary (SD
     * 1.5's, CLIP's) pads with its end token, while SD 2.x pads with "!" (id 0), as diffusers' from_single_file reads it.
     */
    static Optional<JsonNode> tokenizerConfig(Optional<JsonNode> folders, ModelConfigs configs, List<String> notes) {
        if (!ModelConfigs.familysTokenizer(configs.folder()) || configs.tokenizer().isEmpty()) return folders.or(configs::tokenizer);
        String familyPad = padToken(configs.tokenizer().get()), folderPad = folders.map(ModelSource::padToken).orElse(null);
        if (folderPad != null && !folderPad.equals(familyPad)) {
            notes.add("the tokenizer folder pads with " + folderPad + ", the " + configs.origin() + " with " + familyPad
                    + ": prompts are padded as the model was trained, with " + familyPad);
        }
        return configs.tokenizer();
    }

    private static String padToken(JsonNode config) {
        JsonNode pad = config.path("pad_token");
        return pad.isTextual() ? pad.asText() : pad.path("content").isTextual() ? pad.path("content").asText() : "<|endoftext|>";
    }

    /** A safetensors file's own metadata (what family or prediction type it says it is); none for other files. */
    private static Map<String, String> safetensorsMetadata(StateDict file) {
        return file instanceof dev.perfusion.io.Safetensors st ? st.metadata() : Map.of();
    }

    private static boolean hasVocabulary(Path dir) {
        return Files.isRegularFile(dir.resolve("vocab.json")) && Files.isRegularFile(dir.resolve("merges.txt"));
    }
}
