package dev.perfusion.io.layout;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.perfusion.io.ConfigJson;
import dev.perfusion.sampling.SchedulerConfig;
import dev.perfusion.text.ClipTextConfig;
import dev.perfusion.unet.UNetConfig;
import dev.perfusion.vae.VaeConfig;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The configs of one model, each read once into its component's config: UNet, VAE, text encoder, scheduler and
 * (optionally) tokenizer. They come from a diffusers folder ({@code unet/config.json}, {@code vae/config.json},
 * {@code text_encoder/config.json}, {@code scheduler/scheduler_config.json}, {@code tokenizer/tokenizer_config.json} +
 * {@code special_tokens_map.json}) or from the built-in copies shipped for the recognised families under
 * {@code /dev/perfusion/configs/<family>/} in the same layout, read once per run ({@link #builtIn}).
 *
 * @param tokenizer tokenizer_config.json with special_tokens_map.json laid over it (the special tokens map wins,
 *                  as in transformers); empty when the folder has neither
 * @param origin    where the configs come from, for messages: a folder or "built-in &lt;family&gt; configs"
 * @param folder    the folder they were read from; empty for built-in configs
 */
public record ModelConfigs(UNetConfig unet, VaeConfig vae, ClipTextConfig textEncoder, SchedulerConfig scheduler,
                           Optional<JsonNode> tokenizer, String origin, Optional<Path> folder) {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String RESOURCES = "/dev/perfusion/configs/";
    private static final Map<String, ModelConfigs> BUILT_IN = new LinkedHashMap<>();

    /** Reads the configs of a diffusers folder; every component config must be present. */
    public static ModelConfigs fromFolder(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) throw new IOException(dir + ": no such folder (expected a diffusers folder with config files)");
        UNetConfig unet = UNetConfig.load(required(dir, "unet/config.json"));
        VaeConfig vae = VaeConfig.load(required(dir, "vae/config.json"));
        ClipTextConfig textEncoder = ClipTextConfig.load(required(dir, "text_encoder/config.json"));
        SchedulerConfig scheduler = SchedulerConfig.load(Files.isRegularFile(dir.resolve("scheduler/scheduler_config.json"))
                ? dir.resolve("scheduler/scheduler_config.json")
                : required(dir, "scheduler/config.json"));
        Optional<JsonNode> tokenizer = tokenizerConfig(dir.resolve("tokenizer"));
        checkTextToImage(unet, vae, dir);
        return new ModelConfigs(unet, vae, textEncoder, scheduler, tokenizer, dir.toString(), Optional.of(dir));
    }

    /**
     * A text-to-image UNet denoises the VAE's latents and nothing else. Inpainting (9 input channels: latents, mask,
     * masked picture), instruct-pix2pix (8) and depth (5) models loaded, then failed at the first sampler step.
     */
    static void checkTextToImage(UNetConfig unet, VaeConfig vae, Path dir) {
        int latent = vae.latentChannels();
        if (unet.inChannels() != latent || unet.outChannels() != latent) {
            String kind = switch (unet.inChannels()) {
                case 9 -> "an inpainting model's (latents, mask and masked picture)";
                case 8 -> "an instruct-pix2pix model's (latents and the picture to edit)";
                case 5 -> "a depth-to-image model's (latents and depth)";
                default -> "not a text-to-image model's";
            };
            throw new IllegalArgumentException(dir + ": the UNet reads " + unet.inChannels() + " channels and predicts " + unet.outChannels()
                    + ", the VAE's latents have " + latent + ": " + kind + " input, which text-to-image generation does not give; "
                    + "give a text-to-image model");
        }
    }

    /** The shipped configs of a built-in family ({@link ModelFamily#BUILT_IN}), read the first time they are asked for. */
    public static synchronized ModelConfigs builtIn(String family) {
        if (!ModelFamily.BUILT_IN.contains(family)) {
            throw new IllegalArgumentException("no built-in configs for model family '" + family + "' (built in: "
                    + String.join(", ", ModelFamily.BUILT_IN) + ")");
        }
        return BUILT_IN.computeIfAbsent(family, ModelConfigs::readBuiltIn);
    }

    private static ModelConfigs readBuiltIn(String family) {
        String base = RESOURCES + family + "/";
        ObjectNode tokenizer = (ObjectNode) resource(base + "tokenizer/tokenizer_config.json");
        tokenizer.setAll((ObjectNode) resource(base + "tokenizer/special_tokens_map.json"));
        return new ModelConfigs(UNetConfig.fromJson(resource(base + "unet/config.json")),
                VaeConfig.fromJson(resource(base + "vae/config.json")),
                ClipTextConfig.fromJson(resource(base + "text_encoder/config.json")),
                SchedulerConfig.fromJson(resource(base + "scheduler/scheduler_config.json")),
                Optional.of(tokenizer), "built-in " + family + " configs", Optional.empty());
    }

    /** tokenizer_config.json with special_tokens_map.json over it, from a tokenizer folder; empty if neither exists. */
    static Optional<JsonNode> tokenizerConfig(Path tokenizerDir) throws IOException {
        Path config = tokenizerDir.resolve("tokenizer_config.json");
        Path special = tokenizerDir.resolve("special_tokens_map.json");
        if (!Files.isRegularFile(config) && !Files.isRegularFile(special)) return Optional.empty();
        ObjectNode merged = JSON.createObjectNode();
        if (Files.isRegularFile(config)) merged.setAll((ObjectNode) ConfigJson.read(config));
        if (Files.isRegularFile(special)) merged.setAll((ObjectNode) ConfigJson.read(special));
        return Optional.of(merged);
    }

    /**
     * Writes the config files of a diffusers folder ({@code model_index.json} and each component's config) into
     * {@code target}: copied from the folder the configs were read from, or the built-in {@code family}'s.
     */
    static void writeFiles(Optional<Path> folder, String family, Path target) throws IOException {
        Map<String, String> files = new LinkedHashMap<>();
        files.put("model_index.json", "model_index.json");
        files.put("unet/config.json", "unet/config.json");
        files.put("vae/config.json", "vae/config.json");
        files.put("text_encoder/config.json", "text_encoder/config.json");
        files.put("scheduler/scheduler_config.json", "scheduler/scheduler_config.json");
        for (Map.Entry<String, String> f : files.entrySet()) {
            Path to = target.resolve(f.getValue());
            Files.createDirectories(to.getParent());
            Path from = folder.map(d -> d.resolve(f.getKey())).orElse(null);
            if (from != null && !Files.isRegularFile(from) && f.getKey().startsWith("scheduler/")) from = folder.get().resolve("scheduler/config.json");
            if (from != null && Files.isRegularFile(from)) {
                Files.write(to, Files.readAllBytes(from)); // a new file, not the source's permissions
                continue;
            }
            // a config folder without model_index.json gets the standard pipeline's; built-in configs are resources
            String resource = RESOURCES + (folder.isPresent() || !ModelFamily.BUILT_IN.contains(family) ? ModelFamily.SD15 : family)
                    + "/" + f.getKey();
            if (folder.isPresent() && !f.getKey().equals("model_index.json")) {
                throw new IOException(folder.get() + ": missing " + f.getKey());
            }
            try (InputStream in = ModelConfigs.class.getResourceAsStream(resource)) {
                if (in == null) throw new IllegalStateException("built-in config " + resource + " is missing from the build");
                Files.write(to, in.readAllBytes());
            }
        }
    }

    private static Path required(Path dir, String relative) throws IOException {
        Path file = dir.resolve(relative);
        if (!Files.isRegularFile(file)) {
            throw new IOException(dir + ": missing " + relative + " (a diffusers folder has unet/, vae/, text_encoder/"
                    + " and scheduler/ config files)");
        }
        return file;
    }

    /**
     * Whether prompts are read with the family's special tokens, not the tokenizer folder's: configs read from no
     * folder are a built-in family's, and a single file read on them pads as its family does (SD 2.x with "!").
     */
    static boolean familysTokenizer(Optional<Path> configFolder) {
        return configFolder.isEmpty();
    }

    /**
     * Writes a tokenizer folder for a converted model: the vocabulary from {@code tokenizerDir}, and the special tokens
     * prompts were read with ({@link ModelSource#tokenizerConfig}): a built-in family's own files for a single file read
     * on its configs (SD 2.x pads with "!"), else the folder's files as they are (older transformers need their form).
     */
    static void writeTokenizer(Path tokenizerDir, Optional<Path> configFolder, String family, Path target) throws IOException {
        Files.createDirectories(target);
        boolean familys = familysTokenizer(configFolder) && ModelFamily.BUILT_IN.contains(family);
        for (String f : List.of("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json")) {
            boolean config = f.endsWith("config.json") || f.startsWith("special");
            if (familys && config) {
                try (InputStream in = ModelConfigs.class.getResourceAsStream(RESOURCES + family + "/tokenizer/" + f)) {
                    if (in == null) throw new IllegalStateException("built-in config " + family + "/tokenizer/" + f + " is missing from the build");
                    Files.write(target.resolve(f), in.readAllBytes());
                }
            } else if (Files.isRegularFile(tokenizerDir.resolve(f))) {
                Files.write(target.resolve(f), Files.readAllBytes(tokenizerDir.resolve(f)));
            }
        }
    }

    private static JsonNode resource(String name) {
        try (InputStream in = ModelConfigs.class.getResourceAsStream(name)) {
            if (in == null) throw new IllegalStateException("built-in config " + name + " is missing from the build");
            return JSON.readTree(in);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read built-in config " + name, e);
        }
    }
}
