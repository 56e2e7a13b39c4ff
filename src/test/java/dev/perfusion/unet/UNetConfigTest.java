package dev.perfusion.unet;

import dev.perfusion.io.layout.ModelConfigs;
import dev.perfusion.io.StateDict;
import dev.perfusion.nn.Weights;
import dev.perfusion.tensor.Ops;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

class UNetConfigTest {
    /** The shipped SD 1.5 unet/config.json, to edit. */
    static com.fasterxml.jackson.databind.node.ObjectNode sd15Json() throws java.io.IOException {
        try (var in = UNetConfig.class.getResourceAsStream("/dev/perfusion/configs/sd15/unet/config.json")) {
            return (com.fasterxml.jackson.databind.node.ObjectNode) new ObjectMapper().readTree(in);
        }
    }

    @Test
    void sd15BuildsWithTheReferenceParameterCountWithoutAllocating() {
        UNet2DConditionModel unet = UNet2DConditionModel.create(ModelConfigs.builtIn("sd15").unet());
        assertEquals(859_520_964L, unet.parameterCount());
        List<Attention> cross = unet.crossAttentionLayers();
        assertEquals(16, cross.size());
        assertEquals(12_480, cross.stream().mapToLong(Attention::innerDim).sum(), "Σ d_l of SD 1.5 (method notes §1)");
        assertTrue(cross.stream().allMatch(a -> a.contextDim() == 768));
        assertFalse(unet.namedParameters().values().iterator().next().isSet(), "no weights allocated");
    }

    @Test
    void sd21UsesLinearProjectionsAndPerLevelHeads() {
        UNetConfig c = ModelConfigs.builtIn("sd21-base").unet();
        assertTrue(c.useLinearProjection());
        assertEquals(List.of(5, 10, 20, 20), c.headsPerBlock());
        UNet2DConditionModel unet = UNet2DConditionModel.create(c);
        assertArrayEquals(new long[] {320, 320},
                unet.namedParameters().get("down_blocks.0.attentions.0.proj_in.weight").shape());
        assertEquals(1024, unet.crossAttentionLayers().get(0).contextDim());
    }

    @Test
    void unsupportedFeaturesAreRejectedByName() throws Exception {
        var json = new ObjectMapper().readTree("{\"block_out_channels\":[32,64],\"down_block_types\":[\"CrossAttnDownBlock2D\",\"DownBlock2D\"],"
                + "\"up_block_types\":[\"UpBlock2D\",\"CrossAttnUpBlock2D\"],\"class_embed_type\":\"timestep\"}");
        var e = assertThrows(IllegalArgumentException.class, () -> UNetConfig.fromJson(json));
        assertTrue(e.getMessage().contains("class_embed_type"), e.getMessage());
    }

    /**
     * Settings that change what diffusers computes without new weights shapes (or with weights that were dropped) were
     * read past in silence: a config that sets one is refused by name; their defaults, as newer diffusers writes them
     * out (null, false, 3, "default"), are read as before.
     */
    @Test
    void settingsThatChangeTheComputationAreRefusedUnlessAtTheirDefaults() throws Exception {
        Object[][] refused = {{"cross_attention_norm", "group_norm"}, {"num_class_embeds", 10}, {"time_embedding_act_fn", "silu"},
                {"timestep_post_act", "silu"}, {"time_embedding_dim", 512}, {"conv_in_kernel", 1}, {"conv_out_kernel", 5},
                {"mid_block_only_cross_attention", true}, {"attention_type", "gated"}};
        for (Object[] r : refused) {
            var json = sd15Json();
            json.set((String) r[0], new ObjectMapper().valueToTree(r[1]));
            var e = assertThrows(IllegalArgumentException.class, () -> UNetConfig.fromJson(json), r[0].toString());
            assertTrue(e.getMessage().contains((String) r[0]), e.getMessage());
        }
        var defaults = sd15Json();
        for (String key : List.of("cross_attention_norm", "num_class_embeds", "time_embedding_act_fn", "timestep_post_act", "time_embedding_dim",
                "projection_class_embeddings_input_dim", "addition_time_embed_dim")) {
            defaults.putNull(key);
        }
        defaults.put("conv_in_kernel", 3).put("conv_out_kernel", 3).put("attention_type", "default").put("mid_block_only_cross_attention", false)
                .put("class_embeddings_concat", false);
        assertEquals(UNetConfig.fromJson(sd15Json()), UNetConfig.fromJson(defaults));
    }

    @Test
    void keysTheShapesDependOnHaveNoDefault() throws Exception {
        for (String key : List.of("in_channels", "out_channels", "block_out_channels", "cross_attention_dim")) {
            var json = sd15Json();
            json.remove(key);
            var e = assertThrows(IllegalArgumentException.class, () -> UNetConfig.fromJson(json));
            assertTrue(e.getMessage().startsWith("UNet config lacks '" + key + "'"), e.getMessage());
            java.nio.file.Path file = java.nio.file.Files.createTempFile("unet", ".json");
            try {
                java.nio.file.Files.writeString(file, json.toString());
                var fromFile = assertThrows(IllegalArgumentException.class, () -> UNetConfig.load(file));
                assertTrue(fromFile.getMessage().startsWith(file + ": UNet config lacks '" + key + "'"), fromFile.getMessage());
            } finally {
                java.nio.file.Files.delete(file);
            }
        }
    }

    @Test
    void defaultsTakenAreLoggedAtDebug() throws Exception {
        var json = sd15Json();
        json.remove("attention_head_dim");
        List<String> lines = dev.perfusion.io.ConfigLog.during(
                () -> assertEquals(List.of(8, 8, 8, 8), UNetConfig.fromJson(json).headsPerBlock()))
                .stream().filter(line -> line.contains("defaults")).toList();
        assertEquals(1, lines.size(), lines.toString());
        assertTrue(lines.get(0).startsWith("UNet config takes defaults for absent keys: ")
                && lines.get(0).contains("attention_head_dim=8"), lines.get(0));
    }

    @Test
    void missingWeightIsAClearError() throws Exception {
        UNet2DConditionModel unet = UNet2DConditionModel.create(UNetConfig.load(dev.perfusion.Fixtures.diffusers().resolve("unet")));
        var file = dev.perfusion.io.Safetensors.open(dev.perfusion.Fixtures.diffusers().resolve("unet/diffusion_pytorch_model.safetensors"));
        StateDict without = new StateDict() {
            public Set<String> keys() {
                var k = new java.util.LinkedHashSet<>(file.keys());
                k.remove("mid_block.resnets.0.conv1.weight");
                return k;
            }
            public Tensor get(String name) { return file.get(name); }
            public long[] shape(String name) { return file.shape(name); }
            public String describe(String name) { return file.describe(name); }
        };
        var e = assertThrows(IllegalArgumentException.class,
                () -> Weights.load(unet, without, "", Ops.cpu(), org.bytedeco.pytorch.global.torch.ScalarType.Float, "UNet"));
        assertTrue(e.getMessage().contains("mid_block.resnets.0.conv1.weight") && e.getMessage().contains("UNet"), e.getMessage());
    }

    /**
     * Weights with tensors the config has no place for (a second transformer block per level under a config of one, a
     * norm it does not build) loaded without a word and drew otherwise than their model: refused, naming them; the
     * buffers transformers itself reads past are not.
     */
    @Test
    void tensorsTheConfigHasNoPlaceForAreRefused() throws Exception {
        UNet2DConditionModel unet = UNet2DConditionModel.create(UNetConfig.load(dev.perfusion.Fixtures.diffusers().resolve("unet")));
        var file = dev.perfusion.io.Safetensors.open(dev.perfusion.Fixtures.diffusers().resolve("unet/diffusion_pytorch_model.safetensors"));
        String extra = "down_blocks.0.attentions.0.transformer_blocks.1.attn1.to_q.weight";
        StateDict with = withExtra(file, extra);
        var e = assertThrows(IllegalArgumentException.class,
                () -> Weights.load(unet, with, "", Ops.cpu(), org.bytedeco.pytorch.global.torch.ScalarType.Float, "UNet"));
        assertTrue(e.getMessage().startsWith("cannot load the UNet: 1 tensors of the weights have no place in its config (")
                && e.getMessage().contains(extra), e.getMessage());
        Weights.load(unet, withExtra(file, "text_model.embeddings.position_ids"), "", Ops.cpu(), org.bytedeco.pytorch.global.torch.ScalarType.Float, "UNet");
    }

    private static StateDict withExtra(StateDict file, String extra) {
        String any = file.keys().iterator().next();
        return new StateDict() {
            public Set<String> keys() {
                var k = new java.util.LinkedHashSet<>(file.keys());
                k.add(extra);
                return k;
            }
            public Tensor get(String name) { return file.get(name.equals(extra) ? any : name); }
            public long[] shape(String name) { return file.shape(name.equals(extra) ? any : name); }
            public String describe(String name) { return name.equals(extra) ? "unet file tensor " + extra : file.describe(name); }
        };
    }
}
