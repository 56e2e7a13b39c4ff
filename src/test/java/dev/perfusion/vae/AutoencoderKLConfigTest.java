package dev.perfusion.vae;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.perfusion.io.StateDict;
import dev.perfusion.nn.Param;
import dev.perfusion.nn.Weights;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/** Structure from configs alone: the built-in SD 1.5 VAE config, defaults, names, errors. */
class AutoencoderKLConfigTest {

    private static VaeConfig sd15() throws IOException {
        try (InputStream in = AutoencoderKL.class.getResourceAsStream("/dev/perfusion/configs/sd15/vae/config.json")) {
            assertNotNull(in, "built-in SD 1.5 VAE config missing");
            return VaeConfig.fromJson(new ObjectMapper().readTree(in));
        }
    }

    /** The keys the shapes depend on (one level of 64 channels) and {@code more}: "\"a\": 1, ...". */
    private static VaeConfig config(String more) throws IOException {
        return VaeConfig.fromJson(new ObjectMapper().readTree("{\"in_channels\": 3, \"out_channels\": 3, \"latent_channels\": 4,"
                + " \"block_out_channels\": [64]" + (more.isEmpty() ? "" : ", " + more) + "}"));
    }

    @Test
    void sd15HasDiffusersParameterCountWithoutAllocating() throws IOException {
        VaeConfig config = sd15();
        assertEquals(List.of(128, 256, 512, 512), config.blockOutChannels());
        assertEquals(0.18215, config.scalingFactor());
        assertEquals(8, config.downsamplingFactor());
        assertTrue(config.midBlockAddAttention() && config.useQuantConv() && config.usePostQuantConv());
        AutoencoderKL vae = AutoencoderKL.create(config);
        assertEquals(83_653_863L, vae.parameterCount());
    }

    @Test
    void parameterNamesAreDiffusers() throws IOException {
        Map<String, Param> params = AutoencoderKL.create(sd15()).namedParameters();
        assertEquals(248, params.size());
        for (String name : List.of(
                "encoder.conv_in.weight",
                "encoder.down_blocks.0.resnets.1.norm2.bias",
                "encoder.down_blocks.1.resnets.0.conv_shortcut.weight",
                "encoder.down_blocks.2.downsamplers.0.conv.weight",
                "encoder.mid_block.resnets.1.conv2.weight",
                "encoder.mid_block.attentions.0.group_norm.weight",
                "encoder.mid_block.attentions.0.to_out.0.bias",
                "encoder.conv_norm_out.weight",
                "encoder.conv_out.weight",
                "quant_conv.weight",
                "post_quant_conv.bias",
                "decoder.conv_in.weight",
                "decoder.mid_block.attentions.0.to_q.weight",
                "decoder.up_blocks.0.resnets.2.conv1.weight",
                "decoder.up_blocks.2.upsamplers.0.conv.weight",
                "decoder.up_blocks.3.resnets.0.conv_shortcut.weight",
                "decoder.conv_out.bias")) {
            assertTrue(params.containsKey(name), name);
        }
        assertFalse(params.containsKey("encoder.down_blocks.3.downsamplers.0.conv.weight"));
        assertFalse(params.containsKey("decoder.up_blocks.3.upsamplers.0.conv.weight"));
        assertFalse(params.containsKey("encoder.down_blocks.0.resnets.0.conv_shortcut.weight"));
        assertArrayEquals(new long[] {8, 512, 3, 3}, params.get("encoder.conv_out.weight").shape());
        assertArrayEquals(new long[] {512, 512}, params.get("decoder.mid_block.attentions.0.to_k.weight").shape());
        assertArrayEquals(new long[] {256, 512, 1, 1}, params.get("decoder.up_blocks.2.resnets.0.conv_shortcut.weight").shape());
        assertArrayEquals(new long[] {3, 128, 3, 3}, params.get("decoder.conv_out.weight").shape());
    }

    @Test
    void absentKeysTakeDiffusersDefaults() throws IOException {
        VaeConfig c = config("\"block_out_channels\": [64, 64],"
                + " \"down_block_types\": [\"DownEncoderBlock2D\", \"DownEncoderBlock2D\"],"
                + " \"up_block_types\": [\"UpDecoderBlock2D\", \"UpDecoderBlock2D\"], \"use_quant_conv\": false");
        assertEquals(1, c.layersPerBlock());
        assertEquals(32, c.normNumGroups());
        assertEquals("silu", c.actFn());
        assertEquals(0.18215, c.scalingFactor());
        assertTrue(c.midBlockAddAttention());
        assertFalse(c.useQuantConv());
        AutoencoderKL vae = AutoencoderKL.create(c);
        assertFalse(vae.namedParameters().containsKey("quant_conv.weight"));
        assertTrue(vae.namedParameters().containsKey("post_quant_conv.weight"));
    }

    @Test
    void noMidAttentionWhenDisabled() throws IOException {
        VaeConfig c = config("\"mid_block_add_attention\": false");
        assertTrue(AutoencoderKL.create(c).namedParameters().keySet().stream().noneMatch(k -> k.contains("attentions")));
    }

    @Test
    void badConfigsFailClearly() {
        ObjectMapper json = new ObjectMapper();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> config("\"block_out_channels\": [64, 128]"));
        assertTrue(e.getMessage().contains("block_out_channels"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> config("\"down_block_types\": [\"AttnDownEncoderBlock2D\"]"));
        assertTrue(e.getMessage().contains("AttnDownEncoderBlock2D"), e.getMessage());
        // the check fails on the default norm_num_groups, and says the value was a default
        e = assertThrows(IllegalArgumentException.class, () -> config("\"block_out_channels\": [48]"));
        assertTrue(e.getMessage().contains("block_out_channels 48 is not divisible by norm_num_groups 32")
                && e.getMessage().contains("absent keys took defaults:") && e.getMessage().contains("norm_num_groups=32"), e.getMessage());
    }

    @Test
    void keysTheShapesDependOnHaveNoDefault() throws IOException {
        ObjectMapper json = new ObjectMapper();
        for (String key : new String[] {"in_channels", "out_channels", "latent_channels", "block_out_channels"}) {
            var node = (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree("{\"in_channels\": 3, \"out_channels\": 3,"
                    + " \"latent_channels\": 4, \"block_out_channels\": [64]}");
            node.remove(key);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> VaeConfig.fromJson(node));
            assertTrue(e.getMessage().startsWith("VAE config lacks '" + key + "'"), e.getMessage());
        }
    }

    @Test
    void missingWeightIsNamed() throws IOException {
        AutoencoderKL vae = AutoencoderKL.create(VaeConfig.defaults());
        Map<String, long[]> shapes = new HashMap<>();
        vae.namedParameters().forEach((k, p) -> shapes.put(k, p.shape()));
        shapes.remove("decoder.mid_block.attentions.0.to_v.weight");
        StateDict partial = new StateDict() {
            public Set<String> keys() { return shapes.keySet(); }
            public boolean has(String name) { return shapes.containsKey(name); }
            public long[] shape(String name) { return shapes.get(name); }
            public Tensor get(String name) { return Ops.zeros(shapes.get(name)); }
            public String describe(String name) { return name; }
        };
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Weights.load(vae, partial, "", Ops.cpu(), torch.ScalarType.Float, "VAE"));
        assertTrue(e.getMessage().contains("decoder.mid_block.attentions.0.to_v.weight"), e.getMessage());
        assertTrue(e.getMessage().contains("VAE"), e.getMessage());
    }

    @Test
    void randomModelRoundTripsShapes() {
        AutoencoderKL vae = AutoencoderKL.create(VaeConfig.defaults());
        Weights.initRandom(vae, 7);
        try (Scope s = Scope.inference()) {
            Tensor image = torch.randn(1, 3, 16, 16);
            DiagonalGaussian d = vae.encode(image);
            assertArrayEquals(new long[] {1, 4, 16, 16}, Ops.shape(d.mean()));
            assertArrayEquals(new long[] {1, 3, 16, 16}, Ops.shape(vae.imageFromLatents(vae.latentsFromImage(image))));
            assertThrows(IllegalArgumentException.class, () -> vae.decode(torch.randn(1, 3, 8, 8)));
        }
    }
}
