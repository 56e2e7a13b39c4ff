package dev.perfusion.unet;

import dev.perfusion.Fixtures;
import dev.perfusion.io.Safetensors;
import dev.perfusion.nn.Linear;
import dev.perfusion.nn.Projection;
import dev.perfusion.nn.Weights;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class UNetGoldenTest {
    static UNet2DConditionModel fixtureUnet() throws IOException {
        Path dir = Fixtures.diffusers().resolve("unet");
        UNet2DConditionModel unet = UNet2DConditionModel.create(UNetConfig.load(dir.resolve("config.json")));
        Weights.load(unet, Safetensors.open(dir.resolve("diffusion_pytorch_model.safetensors")), "", Ops.cpu(),
                torch.ScalarType.Float, "UNet");
        return unet;
    }

    @Test
    void squareCaseMatchesDiffusers() throws IOException {
        check(fixtureUnet(), "unet_square");
    }

    @Test
    void nonSquareCaseWithPerSampleTimestepsMatchesDiffusers() throws IOException {
        check(fixtureUnet(), "unet_nonsquare");
    }

    @Test
    void firstPipelineStepMatchesTheTrace() throws IOException {
        UNet2DConditionModel unet = fixtureUnet();
        try (Scope s = Scope.inference()) {
            Tensor input = Fixtures.golden("pipe_ddim_trace_unet_input.npy").toTensor().select(0, 0);
            Tensor t = Fixtures.golden("pipe_ddim_trace_timesteps.npy").toTensor().narrow(0, 0, 1);
            Tensor text = Fixtures.golden("pipe_ddim_prompt_embeds.npy").toTensor();
            Tensor expected = Fixtures.golden("pipe_ddim_trace_unet_output.npy").toTensor().select(0, 0);
            double diff = Ops.maxAbsDiff(unet.forward(input, t, text), expected);
            assertTrue(diff < 2e-4, "max abs diff " + diff);
        }
    }

    @Test
    void crossAttentionKeyProjectionIsSwappable() throws IOException {
        UNet2DConditionModel unet = fixtureUnet();
        assertEquals(6, unet.crossAttentionLayers().size(), "fixture: 2 in the down level, 1 in the mid block, 3 in the up level");
        try (Scope s = Scope.inference()) {
            Tensor sample = Fixtures.golden("unet_square_sample.npy").toTensor();
            Tensor t = Fixtures.golden("unet_square_timestep.npy").toTensor();
            Tensor text = Fixtures.golden("unet_square_encoder_hidden_states.npy").toTensor();
            Tensor base = unet.forward(sample, t, text);
            Attention first = unet.crossAttentionLayers().get(0);
            Projection original = first.key();
            Projection doubled = new Projection() {
                public Tensor forward(Tensor x) { return Ops.mul(original.forward(x), 2.0); }
                public Tensor weight() { return original.weight(); }
            };
            first.setKey(doubled);
            assertTrue(Ops.maxAbsDiff(unet.forward(sample, t, text), base) > 1e-3, "the swapped projection is used");
            first.setKey(original);
            assertEquals(0.0, Ops.maxAbsDiff(unet.forward(sample, t, text), base));
            assertTrue(first.originalKey() instanceof Linear);
            assertTrue(unet.namedParameters().containsKey("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"));
        }
    }

    private static void check(UNet2DConditionModel unet, String name) {
        try (Scope s = Scope.inference()) {
            Tensor out = unet.forward(Fixtures.golden(name + "_sample.npy").toTensor(),
                    Fixtures.golden(name + "_timestep.npy").toTensor(),
                    Fixtures.golden(name + "_encoder_hidden_states.npy").toTensor());
            double diff = Ops.maxAbsDiff(out, Fixtures.golden(name + "_out.npy").toTensor());
            assertTrue(diff < 2e-4, name + ": max abs diff " + diff);
        }
    }
}
