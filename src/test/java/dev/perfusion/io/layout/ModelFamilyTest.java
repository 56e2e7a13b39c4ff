package dev.perfusion.io.layout;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.perfusion.io.Safetensors;
import dev.perfusion.io.StateDict;
import dev.perfusion.sampling.SchedulerConfig;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.text.ClipTextConfig;
import dev.perfusion.unet.UNetConfig;
import dev.perfusion.vae.VaeConfig;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Recognition from shapes alone: fake files hold only the tensors recognition reads, at their real SD shapes,
 * as F16 zeros (under 2 MB each).
 */
class ModelFamilyTest {
    @TempDir Path tmp;

    private Path fakeSd1(String name) throws IOException {
        try (Scope s = Scope.inference()) {
            Map<String, Tensor> t = unetAndVae(768, new long[] {320, 320, 1, 1});
            for (int i = 0; i < 12; i++) {
                t.put("cond_stage_model.transformer.text_model.encoder.layers." + i + ".layer_norm1.weight", Ops.zeros(768));
            }
            t.put("cond_stage_model.transformer.text_model.final_layer_norm.weight", Ops.zeros(768));
            return write(name, t);
        }
    }

    private Path fakeSd2(String name) throws IOException {
        try (Scope s = Scope.inference()) {
            Map<String, Tensor> t = unetAndVae(1024, new long[] {320, 320});
            for (int i = 0; i < 24; i++) {
                t.put("cond_stage_model.model.transformer.resblocks." + i + ".ln_1.weight", Ops.zeros(1024));
            }
            t.put("cond_stage_model.model.ln_final.weight", Ops.zeros(1024));
            return write(name, t);
        }
    }

    private static Map<String, Tensor> unetAndVae(long context, long[] projIn) {
        Map<String, Tensor> t = new LinkedHashMap<>();
        String u = "model.diffusion_model.";
        t.put(u + "input_blocks.0.0.weight", Ops.zeros(320, 4, 3, 3));
        t.put(u + "input_blocks.1.1.proj_in.weight", Ops.zeros(projIn));
        t.put(u + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", Ops.zeros(320, context));
        t.put(u + "input_blocks.11.0.in_layers.0.weight", Ops.zeros(1280));
        t.put("first_stage_model.decoder.conv_in.weight", Ops.zeros(512, 4, 3, 3));
        return t;
    }

    private Path write(String name, Map<String, Tensor> tensors) throws IOException {
        Path file = tmp.resolve(name);
        Safetensors.write(file, tensors, Map.of(), Safetensors.StoredType.F16);
        assertTrue(Files.size(file) < 2_000_000, "fake file stays small");
        return file;
    }

    @Test
    void recognisesSd15FromShapes() throws IOException {
        Path file = fakeSd1("some-finetune.safetensors");
        assertEquals(ModelFamily.SD15, ModelFamily.recognize(Safetensors.open(file), file));
    }

    @Test
    void recognisesSd2FromShapesAndEpsilonUnlessTheNameSays768v() throws IOException {
        Path base = fakeSd2("v2-1_512-ema-pruned.safetensors");
        assertEquals(ModelFamily.SD21_BASE, ModelFamily.recognize(Safetensors.open(base), base));
        Path plain = fakeSd2("my-sd2-model.safetensors");
        assertEquals(ModelFamily.SD21_BASE, ModelFamily.recognize(Safetensors.open(plain), plain));
        for (String name : new String[] {"v2-1_768-ema-pruned.safetensors", "768-v-ema.safetensors", "V2-0_768-EMA.safetensors"}) {
            Path v = fakeSd2(name);
            assertEquals(ModelFamily.SD21_V, ModelFamily.recognize(Safetensors.open(v), v), name);
        }
    }

    /**
     * The file's own metadata says what it is before its name does: a 768-v model converted by this project (its
     * metadata says family sd21-v) was read by its name as the epsilon base model, and so were files whose ModelSpec
     * says v-prediction; a file converted from a model of no built-in family is refused, not read as one.
     */
    @Test
    void theFilesOwnMetadataDecidesBeforeItsName() throws IOException {
        Path plain = fakeSd2("my-sd2-model.safetensors"), named = fakeSd2("v2-1_768-ema-pruned.safetensors");
        StateDict st = Safetensors.open(plain);
        assertEquals(ModelFamily.SD21_V, ModelFamily.recognize(st, plain, Map.of("family", "sd21-v")), "this project's convert");
        assertEquals(ModelFamily.SD21_V, ModelFamily.recognize(st, plain, Map.of("modelspec.prediction_type", "v")));
        assertEquals(ModelFamily.SD21_BASE, ModelFamily.recognize(Safetensors.open(named), named, Map.of("modelspec.prediction_type", "epsilon")));
        assertEquals(ModelFamily.SD21_BASE, ModelFamily.recognize(st, plain, Map.of("family", "sd15")), "a family the shapes contradict is not taken");
        ModelInputException custom = assertThrows(ModelInputException.class, () -> ModelFamily.recognize(st, plain, Map.of("family", "custom")));
        assertTrue(custom.getMessage().contains("converted from a model whose configs are no built-in family's"), custom.getMessage());
        Path sd1 = fakeSd1("my-sd1-v.safetensors");
        ModelInputException v = assertThrows(ModelInputException.class,
                () -> ModelFamily.recognize(Safetensors.open(sd1), sd1, Map.of("modelspec.prediction_type", "v_prediction")));
        assertTrue(v.getMessage().contains("an SD 1.x model whose metadata says v-prediction"), v.getMessage());
        assertEquals(ModelFamily.SD15, ModelFamily.recognize(Safetensors.open(sd1), sd1, Map.of("modelspec.prediction_type", "epsilon")));
    }

    @Test
    void recognitionPicksBuiltInConfigsThenChecksTheWholeFile() throws IOException {
        Path file = fakeSd1("sd15-header-only.safetensors");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ModelSource.resolve(file));
        assertTrue(e.getMessage().startsWith(file + ": the UNet weights do not fit the UNet config"), e.getMessage());
        assertTrue(e.getMessage().contains("from built-in sd15 configs"), e.getMessage());
        assertTrue(e.getMessage().contains("the file has no tensors for"), e.getMessage());
    }

    @Test
    void aNamedFamilyMustNotContradictTheShapes() throws IOException {
        Path file = fakeSd1("sd1.safetensors");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ModelSource.resolve(file, ModelSource.Options.defaults().withFamily(ModelFamily.SD21_V)));
        assertTrue(e.getMessage().contains("model family sd21-v was given, but the file is SD 1.x"), e.getMessage());
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
                () -> ModelSource.resolve(file, ModelSource.Options.defaults().withFamily("sdxl")));
        assertTrue(unknown.getMessage().contains("unknown model family 'sdxl'"), unknown.getMessage());
    }

    @Test
    void inpaintingUNetIsNotTakenForSd15() throws IOException {
        try (Scope s = Scope.inference()) {
            Map<String, Tensor> t = unetAndVae(768, new long[] {320, 320, 1, 1});
            t.put("model.diffusion_model.input_blocks.0.0.weight", Ops.zeros(320, 9, 3, 3));
            for (int i = 0; i < 12; i++) t.put("cond_stage_model.transformer.text_model.encoder.layers." + i + ".layer_norm1.weight", Ops.zeros(768));
            t.put("cond_stage_model.transformer.text_model.final_layer_norm.weight", Ops.zeros(768));
            Path file = write("inpainting.safetensors", t);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ModelFamily.recognize(Safetensors.open(file), file));
            assertTrue(e.getMessage().startsWith(file + ": unknown model family (UNet context dim 768, in_channels 9"), e.getMessage());
        }
    }

    @Test
    void builtInConfigsAreTheirOwnFamily() {
        for (String family : ModelFamily.BUILT_IN) {
            ModelConfigs c = ModelConfigs.builtIn(family);
            assertEquals(family, ModelFamily.classify(c));
            assertEquals(77, c.tokenizer().orElseThrow().get("model_max_length").asInt());
        }
        ModelConfigs sd15 = ModelConfigs.builtIn(ModelFamily.SD15);
        assertEquals(768, sd15.unet().crossAttentionDim());
        assertEquals(12, sd15.textEncoder().numHiddenLayers());
        assertEquals("quick_gelu", sd15.textEncoder().hiddenAct());
        assertEquals("<|endoftext|>", sd15.tokenizer().orElseThrow().get("pad_token").asText());
        ModelConfigs v = ModelConfigs.builtIn(ModelFamily.SD21_V);
        assertEquals(23, v.textEncoder().numHiddenLayers());
        assertEquals("v_prediction", v.scheduler().predictionType());
        assertTrue(v.unet().useLinearProjection());
        assertEquals("!", v.tokenizer().orElseThrow().get("pad_token").asText());
        assertEquals("epsilon", ModelConfigs.builtIn(ModelFamily.SD21_BASE).scheduler().predictionType());
        assertSame(sd15, ModelConfigs.builtIn(ModelFamily.SD15), "read once");
    }

    @Test
    void sd15BlockTableFollowsTheLdmNumbering() {
        BlockTable unet = LdmUnet.blocks(ModelConfigs.builtIn(ModelFamily.SD15).unet());
        Map<String, String> expected = Map.of(
                "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight",
                "input_blocks.3.0.op.weight", "down_blocks.0.downsamplers.0.conv.weight",
                "input_blocks.11.0.skip_connection.bias", "down_blocks.3.resnets.1.conv_shortcut.bias",
                "output_blocks.2.1.conv.weight", "up_blocks.0.upsamplers.0.conv.weight",
                "output_blocks.5.2.conv.bias", "up_blocks.1.upsamplers.0.conv.bias",
                "output_blocks.8.2.conv.weight", "up_blocks.2.upsamplers.0.conv.weight",
                "output_blocks.11.1.proj_out.weight", "up_blocks.3.attentions.2.proj_out.weight",
                "middle_block.2.emb_layers.1.weight", "mid_block.resnets.1.time_emb_proj.weight",
                "time_embed.2.bias", "time_embedding.linear_2.bias",
                "out.2.weight", "conv_out.weight");
        expected.forEach((ldm, diffusers) -> assertEquals(diffusers, unet.rename(ldm).name(), ldm));
        assertNull(unet.rename("output_blocks.11.2.conv.weight"), "the last up block has no upsampler");
        assertNull(unet.rename("input_blocks.12.0.in_layers.0.weight"));
        long transformers = unet.blocks().stream().filter(b -> b.kind() == BlockTable.Kind.SAME_INSIDE).count();
        assertEquals(6 + 1 + 9, transformers);
        // time_embed.0/2, conv_in, out.0/2; down: 8 resnets, 6 transformers, 3 downsamplers; mid 3; up: 12, 9, 3
        assertEquals(5 + (8 + 6 + 3) + 3 + (12 + 9 + 3), unet.blocks().size());

        BlockTable vae = LdmVae.blocks(ModelConfigs.builtIn(ModelFamily.SD15).vae());
        assertEquals("decoder.up_blocks.0.resnets.2.conv2.weight", vae.rename("decoder.up.3.block.2.conv2.weight").name());
        assertEquals("decoder.up_blocks.2.upsamplers.0.conv.bias", vae.rename("decoder.up.1.upsample.conv.bias").name());
        assertNull(vae.rename("decoder.up.0.upsample.conv.bias"), "the last decoder level has no upsampler");
        assertEquals("encoder.down_blocks.1.resnets.0.conv_shortcut.weight", vae.rename("encoder.down.1.block.0.nin_shortcut.weight").name());
        assertEquals("encoder.mid_block.attentions.0.to_out.0.weight", vae.rename("encoder.mid.attn_1.proj_out.weight").name());
        assertEquals("decoder.mid_block.attentions.0.group_norm.bias", vae.rename("decoder.mid.attn_1.norm.bias").name());
    }

    @Test
    void familyPresetsAreTheShippedDiffusersConfigs() throws IOException {
        ObjectMapper json = new ObjectMapper();
        for (String family : ModelFamily.BUILT_IN) {
            ModelConfigs preset = ModelConfigs.builtIn(family);
            String base = "/dev/perfusion/configs/" + family + "/";
            try (InputStream unet = getClass().getResourceAsStream(base + "unet/config.json");
                 InputStream vae = getClass().getResourceAsStream(base + "vae/config.json");
                 InputStream text = getClass().getResourceAsStream(base + "text_encoder/config.json");
                 InputStream scheduler = getClass().getResourceAsStream(base + "scheduler/scheduler_config.json")) {
                assertEquals(UNetConfig.fromJson(json.readTree(unet)), preset.unet(), family);
                assertEquals(VaeConfig.fromJson(json.readTree(vae)), preset.vae(), family);
                assertEquals(ClipTextConfig.fromJson(json.readTree(text)), preset.textEncoder(), family);
                assertEquals(SchedulerConfig.fromJson(json.readTree(scheduler)), preset.scheduler(), family);
            }
        }
    }

    @Test
    void theShapesOfEachGenerationFitItsPresetsOnly() throws IOException {
        ModelFamily.Signature sd1 = ModelFamily.signature(Safetensors.open(fakeSd1("sd1.safetensors")));
        ModelFamily.Signature sd2 = ModelFamily.signature(Safetensors.open(fakeSd2("sd2.safetensors")));
        assertTrue(sd1.fits(ModelConfigs.builtIn(ModelFamily.SD15)), sd1.describe());
        assertFalse(sd1.fits(ModelConfigs.builtIn(ModelFamily.SD21_BASE)), sd1.describe());
        for (String family : List.of(ModelFamily.SD21_BASE, ModelFamily.SD21_V)) {
            assertTrue(sd2.fits(ModelConfigs.builtIn(family)), family + ": " + sd2.describe());
        }
        assertFalse(sd2.fits(ModelConfigs.builtIn(ModelFamily.SD15)), sd2.describe());
    }
}
