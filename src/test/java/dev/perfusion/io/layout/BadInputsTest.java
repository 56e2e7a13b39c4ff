package dev.perfusion.io.layout;

import dev.perfusion.Fixtures;
import dev.perfusion.io.Safetensors;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.*;

class BadInputsTest {
    @TempDir Path tmp;

    private static String message(Throwable t) { return t.getMessage(); }

    /** A folder holding the fixture's model_index.json and component configs, without weights or tokenizer. */
    private Path configsOnly(String name) throws IOException {
        Path dir = tmp.resolve(name);
        for (String f : List.of("model_index.json", "unet/config.json", "vae/config.json", "text_encoder/config.json",
                "scheduler/scheduler_config.json")) {
            Files.createDirectories(dir.resolve(f).getParent());
            Files.copy(Fixtures.diffusers().resolve(f), dir.resolve(f));
        }
        return dir;
    }

    @Test
    void brokenPickleCheckpointsAreClearErrors() throws IOException {
        Path ckpt = tmp.resolve("v1-5-pruned.ckpt");
        Files.write(ckpt, new byte[] {'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0});
        IOException e = assertThrows(IOException.class, () -> ModelSource.resolve(ckpt));
        assertTrue(message(e).startsWith(ckpt + ": zip archive: no end of central directory (truncated or not a zip file)"), message(e));
        // recognised by content too, whatever the name
        Path disguised = tmp.resolve("model.safetensors");
        Files.write(disguised, new byte[] {(byte) 0x80, 2, '}', 'q', 0, 0, 0, 0, 0, 0});
        IOException e2 = assertThrows(IOException.class, () -> ModelSource.resolve(disguised));
        assertTrue(message(e2).startsWith(disguised + ": unknown opcode 0x00: not a pickle, or a corrupt one (at byte 5)"), message(e2));
    }

    @Test
    void folderWithoutModelIndex() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("not-diffusers"));
        IOException e = assertThrows(IOException.class, () -> ModelSource.resolve(dir));
        assertTrue(message(e).startsWith(dir + ": not a diffusers folder: it has no model_index.json"), message(e));
        IOException missing = assertThrows(IOException.class, () -> ModelSource.resolve(tmp.resolve("nowhere.safetensors")));
        assertTrue(message(missing).contains("nowhere.safetensors: no such file or folder"), message(missing));
    }

    @Test
    void singleFileWithMissingComponents() throws IOException {
        Path fixtureConfig = Fixtures.diffusers(); // skips here, not inside assertThrows, when the fixtures are absent
        try (Scope s = Scope.inference()) {
            Map<String, Tensor> t = new LinkedHashMap<>();
            t.put("model.diffusion_model.input_blocks.0.0.weight", Ops.zeros(4, 4, 3, 3));
            Path unetOnly = tmp.resolve("unet-only.safetensors");
            Safetensors.write(unetOnly, t, Map.of(), Safetensors.StoredType.F16);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> ModelSource.resolve(unetOnly, ModelSource.Options.defaults().withConfig(fixtureConfig)));
            assertTrue(message(e).startsWith(unetOnly + ": not a complete Stable Diffusion checkpoint: it has no VAE"
                    + " (first_stage_model.*), no text encoder"), message(e));

            Path lora = tmp.resolve("lora.safetensors");
            Safetensors.write(lora, Map.of("lora_unet_down_blocks_0.alpha", Ops.zeros(1)), Map.of(), Safetensors.StoredType.F16);
            IllegalArgumentException e2 = assertThrows(IllegalArgumentException.class, () -> ModelSource.resolve(lora));
            assertTrue(message(e2).startsWith(lora + ": no Stable Diffusion weights"), message(e2));
            assertTrue(message(e2).contains("lora_unet_down_blocks_0.alpha"), message(e2));

            Path sdxl = tmp.resolve("sdxl.safetensors");
            Safetensors.write(sdxl, Map.of("conditioner.embedders.1.model.ln_final.weight", Ops.zeros(4),
                    "model.diffusion_model.input_blocks.0.0.weight", Ops.zeros(4, 4, 3, 3)), Map.of(), Safetensors.StoredType.F16);
            IllegalArgumentException e3 = assertThrows(IllegalArgumentException.class, () -> ModelSource.resolve(sdxl));
            assertTrue(message(e3).startsWith(sdxl + ": this looks like an SDXL checkpoint"), message(e3));
        }
    }

    @Test
    void singleFileThatDoesNotFitTheGivenConfig() throws IOException {
        try (Scope s = Scope.inference()) {
            // the fixture without its last UNet output block and with a stray key
            Safetensors fixture = Safetensors.open(Fixtures.singleFile());
            Map<String, Tensor> t = new TreeMap<>();
            for (String k : fixture.keys()) {
                if (!k.startsWith("model.diffusion_model.output_blocks.5.")) t.put(k, fixture.get(k));
            }
            t.put("model.diffusion_model.input_blocks.1.0.extra.weight", Ops.zeros(2));
            Path broken = tmp.resolve("broken.safetensors");
            Safetensors.write(broken, t, Map.of(), Safetensors.StoredType.F16);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> ModelSource.resolve(broken, ModelSource.Options.defaults().withConfig(Fixtures.diffusers())));
            assertTrue(message(e).startsWith(broken + ": the UNet weights do not fit the UNet config (block_out_channels [32, 64]"), message(e));
            assertTrue(message(e).contains("1 tensors match no block of that config: model.diffusion_model.input_blocks.1.0.extra.weight"), message(e));
            assertTrue(message(e).contains("model.diffusion_model.output_blocks.5.0.* (up_blocks.1.resnets.2.*)"), message(e));
            assertTrue(message(e).contains("model.diffusion_model.output_blocks.5.1.* (up_blocks.1.attentions.2.*)"), message(e));
        }
    }

    /** An inpainting model (9 input channels) loaded, then failed at the first sampler step: refused when its configs are read. */
    @Test
    void anInpaintingModelIsRefusedWhenItsConfigsAreRead() throws IOException {
        Path configs = configsOnly("inpainting");
        Path unetConfig = configs.resolve("unet/config.json");
        com.fasterxml.jackson.databind.node.ObjectNode unet = (com.fasterxml.jackson.databind.node.ObjectNode) new com.fasterxml.jackson.databind.ObjectMapper().readTree(unetConfig.toFile());
        unet.put("in_channels", 9);
        Files.writeString(unetConfig, unet.toString());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ModelSource.resolve(Fixtures.singleFile(), ModelSource.Options.defaults().withConfig(configs)));
        assertEquals(configs + ": the UNet reads 9 channels and predicts 4, the VAE's latents have 4: an inpainting model's (latents, mask and "
                + "masked picture) input, which text-to-image generation does not give; give a text-to-image model", message(e));
    }

    @Test
    void tokenizerResolution() throws IOException {
        Path singleFile = Fixtures.singleFile(), fixtureConfig = Fixtures.diffusers();
        Path noVocab = Files.createDirectories(tmp.resolve("tok"));
        IOException e = assertThrows(IOException.class, () -> ModelSource.resolve(singleFile,
                ModelSource.Options.defaults().withConfig(fixtureConfig).withTokenizer(noVocab)));
        assertTrue(message(e).startsWith(noVocab + ": not a tokenizer folder: it needs vocab.json and merges.txt"), message(e));

        // a --config folder without a tokenizer: none, and the caller's message names the file
        Path configOnly = configsOnly("config-only");
        ResolvedModel m = ModelSource.resolve(Fixtures.singleFile(), ModelSource.Options.defaults().withConfig(configOnly));
        assertEquals(Optional.empty(), m.tokenizerDir());
        assertEquals(Optional.empty(), m.tokenizerConfig());
        IllegalArgumentException none = assertThrows(IllegalArgumentException.class, m::requireTokenizerDir);
        assertEquals(Fixtures.singleFile() + ": single-file checkpoints carry no tokenizer; give a tokenizer folder holding"
                + " vocab.json and merges.txt", message(none));

        ResolvedModel explicit = ModelSource.resolve(Fixtures.singleFile(),
                ModelSource.Options.defaults().withConfig(configOnly).withTokenizer(Fixtures.diffusers().resolve("tokenizer")));
        assertEquals(Optional.of(Fixtures.diffusers().resolve("tokenizer")), explicit.tokenizerDir());
        assertEquals(77, explicit.tokenizerConfig().orElseThrow().get("model_max_length").asInt());

        // a diffusers folder whose component has no weights
        IOException noWeights = assertThrows(IOException.class, () -> ModelSource.resolve(configOnly));
        assertTrue(message(noWeights).startsWith(configOnly.resolve("unet") + ": no weights"), message(noWeights));
    }

    @Test
    void fp16VariantAndShardedWeightsInADiffusersFolder() throws IOException {
        Path dir = configsOnly("variant");
        Files.copy(Fixtures.diffusers().resolve("unet/diffusion_pytorch_model.safetensors"), dir.resolve("unet/diffusion_pytorch_model.fp16.safetensors"));
        Files.copy(Fixtures.diffusers().resolve("vae/diffusion_pytorch_model.safetensors"), dir.resolve("vae/diffusion_pytorch_model.fp16.safetensors"));
        Safetensors text = Safetensors.open(Fixtures.diffusers().resolve("text_encoder/model.safetensors"));
        StringBuilder index = new StringBuilder("{\"metadata\": {}, \"weight_map\": {");
        try (Scope s = Scope.inference()) {
            Map<String, Tensor> first = new TreeMap<>(), second = new TreeMap<>();
            for (String k : new TreeSet<>(text.keys())) {
                boolean one = k.contains("layers.0.") || k.contains("embeddings");
                (one ? first : second).put(k, text.get(k));
                if (index.charAt(index.length() - 1) != '{') index.append(", ");
                index.append('"').append(k).append("\": \"model-0000").append(one ? 1 : 2).append("-of-00002.safetensors\"");
            }
            Safetensors.write(dir.resolve("text_encoder/model-00001-of-00002.safetensors"), first, Map.of(), Safetensors.StoredType.F16);
            Safetensors.write(dir.resolve("text_encoder/model-00002-of-00002.safetensors"), second, Map.of(), Safetensors.StoredType.F16);
        }
        Files.writeString(dir.resolve("text_encoder/model.safetensors.index.json"), index.append("}}").toString());

        ResolvedModel m = ModelSource.resolve(dir);
        ResolvedModel reference = ModelSource.resolve(Fixtures.diffusers());
        assertEquals(WeightHash.full(reference.unetWeights()), WeightHash.full(m.unetWeights()));
        assertEquals(new TreeSet<>(text.keys()), new TreeSet<>(m.textEncoderWeights().keys()));
        assertEquals(WeightHash.full(reference.textEncoderWeights()), WeightHash.full(m.textEncoderWeights()));
        assertTrue(m.textEncoderWeights().describe("text_model.final_layer_norm.weight").contains("model-00002-of-00002"));
        assertEquals(Optional.empty(), m.tokenizerDir(), "this copy has no tokenizer/");
    }

    /** A shard index naming a file elsewhere: /dev/stdin hung the command (waiting on the terminal), ../ read outside the model. */
    @Test
    void aShardIndexNamesOnlyFilesBesideIt(@org.junit.jupiter.api.io.TempDir Path tmp) throws IOException {
        Path index = Files.createDirectories(tmp.resolve("model/text_encoder")).resolve("model.safetensors.index.json");
        Files.writeString(tmp.resolve("model/secret.safetensors"), "not a model's");
        for (String shard : List.of("/dev/stdin", "../secret.safetensors", "")) {
            Files.writeString(index, "{\"weight_map\": {\"text_model.embeddings.token_embedding.weight\": \"" + shard + "\"}}");
            IOException e = assertThrows(IOException.class, () -> ShardedStateDict.open(index));
            assertEquals(index + " lists tensor 'text_model.embeddings.token_embedding.weight' in '" + shard + "', which is not a file beside the index",
                    e.getMessage());
        }
        Files.writeString(index, "{\"weight_map\": {\"w\": \"model-00001-of-00002.safetensors\"}}");
        IOException missing = assertThrows(IOException.class, () -> ShardedStateDict.open(index));
        assertEquals(index + " lists tensor 'w' in model-00001-of-00002.safetensors, which is missing", missing.getMessage());
    }

    @Test
    void perLevelLayersPerBlockIsReadAlikeForFoldersAndSingleFiles() throws IOException {
        Path configs = configsOnly("per-level");
        Path unet = configs.resolve("unet/config.json");
        var json = (com.fasterxml.jackson.databind.node.ObjectNode) new com.fasterxml.jackson.databind.ObjectMapper().readTree(unet.toFile());
        json.putArray("layers_per_block").add(2).add(2);
        Files.writeString(unet, json.toString());
        ResolvedModel same = ModelSource.resolve(Fixtures.singleFile(), ModelSource.Options.defaults().withConfig(configs));
        assertEquals(2, same.unetConfig().layersPerBlock());
        assertEquals(ModelSource.resolve(Fixtures.diffusers()).unetConfig(), same.unetConfig());

        json.putArray("layers_per_block").add(2).add(3);
        Files.writeString(unet, json.toString());
        String expected = unet + ": UNet config: layers_per_block must be one number, or a list with the same number for"
                + " every level (levels with different counts are not supported), got [2, 3]";
        IllegalArgumentException single = assertThrows(IllegalArgumentException.class,
                () -> ModelSource.resolve(Fixtures.singleFile(), ModelSource.Options.defaults().withConfig(configs)));
        assertEquals(expected, message(single));
        IllegalArgumentException folder = assertThrows(IllegalArgumentException.class,
                () -> ModelSource.resolve(Fixtures.diffusers(), ModelSource.Options.defaults().withConfig(configs)));
        assertEquals(expected, message(folder));
    }
}
