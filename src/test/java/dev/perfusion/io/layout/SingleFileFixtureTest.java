package dev.perfusion.io.layout;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.perfusion.Fixtures;
import dev.perfusion.io.Safetensors;
import dev.perfusion.io.StateDict;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.*;

/** The fixture's single file, renamed with the configs of its diffusers folder, against that folder. */
class SingleFileFixtureTest {
    private static final Map<String, String> WEIGHT_FILES = Map.of(
            "unet", "unet/diffusion_pytorch_model.safetensors",
            "vae", "vae/diffusion_pytorch_model.safetensors",
            "text_encoder", "text_encoder/model.safetensors");

    private static StateDict component(ResolvedModel m, String name) {
        return switch (name) {
            case "unet" -> m.unetWeights();
            case "vae" -> m.vaeWeights();
            default -> m.textEncoderWeights();
        };
    }

    @Test
    void renamedViewsEqualTheDiffusersFolderBitForBit() throws IOException {
        ResolvedModel single = ModelSource.resolve(Fixtures.singleFile(), ModelSource.Options.defaults().withConfig(Fixtures.diffusers()));
        assertEquals(CheckpointLayout.SINGLE_FILE, single.layout());
        assertEquals(ModelFamily.CUSTOM, single.family());
        assertFalse(single.openClipTextEncoder());
        assertEquals(Optional.of(Fixtures.diffusers().resolve("tokenizer")), single.tokenizerDir(), "tokenizer from the --config folder");
        assertEquals("<|endoftext|>", single.tokenizerConfig().orElseThrow().get("pad_token").asText());
        assertEquals(32, single.unetConfig().crossAttentionDim());

        int compared = 0;
        for (var c : WEIGHT_FILES.entrySet()) {
            Safetensors reference = Safetensors.open(Fixtures.diffusers().resolve(c.getValue()));
            StateDict view = component(single, c.getKey());
            assertEquals(new TreeSet<>(reference.keys()), new TreeSet<>(view.keys()), c.getKey() + " key set");
            for (String name : reference.keys()) {
                assertArrayEquals(reference.shape(name), view.shape(name), c.getKey() + "/" + name + " shape");
                try (Scope s = Scope.inference()) {
                    Tensor expected = reference.get(name);
                    Tensor actual = view.get(name);
                    assertArrayEquals(Ops.shape(expected), Ops.shape(actual), name);
                    assertArrayEquals(Ops.toFloats(expected), Ops.toFloats(actual), c.getKey() + "/" + name + " bit-identical");
                }
                compared++;
            }
        }
        assertTrue(compared > 500, "compared " + compared + " tensors");
    }

    @Test
    void renameTableAgreesWithKeyMapJson() throws IOException {
        JsonNode keyMap = new ObjectMapper().readTree(Fixtures.sdTiny().resolve("single_file/key_map.json").toFile()).get("map");
        ResolvedModel single = ModelSource.resolve(Fixtures.singleFile(), ModelSource.Options.defaults().withConfig(Fixtures.diffusers()));
        Map<String, Integer> perComponent = new HashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = keyMap.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String component = e.getKey().substring(0, e.getKey().indexOf('/'));
            String name = e.getKey().substring(component.length() + 1);
            RenamedStateDict view = (RenamedStateDict) component(single, component);
            RenamedStateDict.Source source = view.table().get(name);
            assertNotNull(source, "no rename for " + e.getKey());
            assertEquals(e.getValue().get("ldm").asText(), source.key(), e.getKey());
            long[] ldmShape = new ObjectMapper().convertValue(e.getValue().get("ldm_shape"), long[].class);
            long[] diffusersShape = new ObjectMapper().convertValue(e.getValue().get("diffusers_shape"), long[].class);
            assertArrayEquals(ldmShape, view.stored().shape(source.key()), e.getKey());
            assertArrayEquals(diffusersShape, view.shape(name), e.getKey());
            assertEquals(Arrays.equals(ldmShape, diffusersShape) ? RenamedStateDict.AS_STORED : RenamedStateDict.CONV_KERNEL_AS_LINEAR,
                    source.transform(), e.getKey());
            perComponent.merge(component, 1, Integer::sum);
        }
        assertEquals(perComponent.get("unet"), single.unetWeights().keys().size());
        assertEquals(perComponent.get("vae"), single.vaeWeights().keys().size());
        assertEquals(perComponent.get("text_encoder"), single.textEncoderWeights().keys().size());
        String q = single.vaeWeights().describe("decoder.mid_block.attentions.0.to_q.weight");
        assertTrue(q.contains("sd-tiny.safetensors") && q.contains("first_stage_model.decoder.mid.attn_1.q.weight"), q);
    }

    @Test
    void hashesDoNotDependOnTheLayout() throws IOException {
        ResolvedModel single = ModelSource.resolve(Fixtures.singleFile(), ModelSource.Options.defaults().withConfig(Fixtures.diffusers()));
        ResolvedModel folder = ModelSource.resolve(Fixtures.diffusers());
        for (String c : WEIGHT_FILES.keySet()) {
            assertEquals(WeightHash.full(component(folder, c)), WeightHash.full(component(single, c)), c);
            assertEquals(WeightHash.sampled(component(folder, c)), WeightHash.sampled(component(single, c)), c);
        }
        String unet = WeightHash.full(folder.unetWeights());
        assertTrue(unet.startsWith("sha256-f32:") && unet.length() == "sha256-f32:".length() + 64, unet);
        assertTrue(WeightHash.sampled(folder.unetWeights()).startsWith("sha256-f32-sampled4096:"));
        assertNotEquals(unet, WeightHash.full(folder.textEncoderWeights()));
        assertEquals(unet, WeightHash.full(folder.unetWeights()), "deterministic");
    }

    @Test
    void theTinyFixtureIsNoKnownFamily() {
        Path file = Fixtures.singleFile();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ModelSource.resolve(file));
        assertTrue(e.getMessage().startsWith(file + ": unknown model family (UNet context dim 32"), e.getMessage());
        assertTrue(e.getMessage().contains("text encoder CLIP 3 layers x 32"), e.getMessage());
        assertTrue(e.getMessage().contains("give a diffusers folder whose config files describe this model"), e.getMessage());
    }

    @Test
    void diffusersFolderIsReadAsItIs() throws IOException {
        ResolvedModel m = ModelSource.resolve(Fixtures.diffusers());
        assertEquals(CheckpointLayout.DIFFUSERS_FOLDER, m.layout());
        assertEquals(ModelFamily.CUSTOM, m.family());
        assertEquals(Optional.of(Fixtures.diffusers().resolve("tokenizer")), m.tokenizerDir());
        assertEquals("DDIMScheduler", m.schedulerConfig().json().get("_class_name").asText());
        assertEquals(3, m.textEncoderConfig().numHiddenLayers());
        assertTrue(m.unetWeights().has("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"));
        assertTrue(m.textEncoderWeights().has("text_model.encoder.layers.0.self_attn.q_proj.weight"));
        assertArrayEquals(new long[] {64, 64}, m.vaeWeights().shape("decoder.mid_block.attentions.0.to_q.weight"));
    }

    @Test
    void theFileHasTheShapesItsFolderConfigsSay() throws IOException {
        ModelFamily.Signature s = ModelFamily.signature(Safetensors.open(Fixtures.singleFile()));
        assertTrue(s.fits(ModelConfigs.fromFolder(Fixtures.diffusers())), s.describe());
        for (String family : ModelFamily.BUILT_IN) assertFalse(s.fits(ModelConfigs.builtIn(family)), family);
    }
}
