package dev.perfusion.vae;

import dev.perfusion.nn.Weights;
import dev.perfusion.pipeline.SeededNoise;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class VaeAttentionTest {
    /**
     * The attention block gives its output in its input's memory layout: NCHW where the VAE trains (its transposed
     * tokens would otherwise make every later convolution channels-last), channels-last where the weights are stored so.
     */
    @Test
    void outputKeepsTheInputsLayout() {
        VaeAttention attention = new VaeAttention(32, 8, 1e-6);
        Weights.initRandom(attention, 3);
        try (Scope s = Scope.inference()) {
            Tensor x = new SeededNoise(4).randn(2, 32, 8, 8);
            Tensor nchw = attention.forward(x);
            assertTrue(nchw.is_contiguous(), "NCHW in, NCHW out");
            Tensor channelsLast = attention.forward(x.contiguous(torch.MemoryFormat.ChannelsLast));
            assertTrue(channelsLast.is_contiguous(torch.MemoryFormat.ChannelsLast) && !channelsLast.is_contiguous(), "channels-last in, channels-last out");
            assertTrue(torch.allclose(nchw, channelsLast, 1e-5, 1e-6, false), "the same values");
        }
    }
}
