package dev.perfusion.tensor;

import dev.perfusion.pipeline.SeededNoise;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The helper layer's contracts that model code relies on without checking. */
class OpsTest {
    @Test
    void aLargeLinearWithoutGradientsIsSplitByRowsAndMatchesTheWholeOne() {
        int before = Threads.configured();
        try (Scope scope = Scope.inference()) {
            Threads.use(2);
            if (System.getenv("OPENBLAS_NUM_THREADS") == null) assertEquals(2, Threads.partsForOneMatmul(), "one part per thread");
            TensorOptions f32 = new TensorOptions(torch.ScalarType.Float);
            Tensor weight = torch.randn(new long[] {512, 96}, f32), bias = torch.randn(new long[] {512}, f32);
            for (long rows : new long[] {1001, 4096}) {  // an odd count leaves the last part shorter
                Tensor x = torch.randn(new long[] {3, rows, 96}, f32);
                Tensor whole = torch.linear(x, weight, new org.bytedeco.pytorch.TensorOptional(bias));
                Tensor split = Ops.linear(x, weight, bias);
                assertArrayEquals(Ops.shape(whole), Ops.shape(split));
                assertTrue(Ops.maxAbsDiff(whole, split) < 1e-4, "rows " + rows + ": " + Ops.maxAbsDiff(whole, split));
                assertTrue(Ops.maxAbsDiff(torch.linear(x, weight), Ops.linear(x, weight, null)) < 1e-4, "without a bias");
            }
            try (Threads.SideBySide side = Threads.sideBySide(1, "test-one-part")) {
                assertEquals(1, Threads.partsForOneMatmul(), "a part of side-by-side work computes on its own thread alone");
            }
        } finally {
            Threads.use(before);
        }
    }

    @Test
    void convolutionInputGradientIsFiniteForEveryOutputWidth() {
        // out widths that are not multiples of oneDNN's channel block (4 is the UNet's conv_out, 3 the VAE's)
        long[][] shapes = {{32, 4}, {4, 4}, {64, 3}, {128, 8}, {8, 24}, {32, 1}, {32, 16}};
        for (long[] s : shapes) {
            for (int round = 0; round < 40; round++) {
                try (Scope scope = Scope.open()) {
                    Tensor weight = torch.randn(new long[] {s[1], s[0], 3, 3}, new TensorOptions(torch.ScalarType.Float));
                    Tensor bias = torch.randn(new long[] {s[1]}, new TensorOptions(torch.ScalarType.Float));
                    Tensor x = torch.randn(new long[] {4, s[0], 16, 16}, new TensorOptions(torch.ScalarType.Float)).set_requires_grad(true);
                    Tensor upstream = torch.randn(new long[] {4, s[1], 16, 16}, new TensorOptions(torch.ScalarType.Float));
                    FreedMemory.poison(round);
                    Tensor y = Ops.conv2d(x, weight, bias, 1, 1);
                    assertArrayEquals(new long[] {4, s[1], 16, 16}, Ops.shape(y));
                    Ops.sum(Ops.mul(y, upstream).flatten(), 0, false).backward();
                    assertTrue(Ops.allFinite(x.grad()), "input gradient of a 3x3 conv " + s[0] + " -> " + s[1] + " channels, round " + round);
                    if (round == 0) {
                        // the same values as the plain convolution and its gradient (upstream correlated with W)
                        try (Scope check = Scope.inference()) {
                            Tensor plain = torch.conv2d(x.detach(), weight, new org.bytedeco.pytorch.TensorOptional(bias),
                                    new long[] {1, 1}, new long[] {1, 1}, new long[] {1, 1}, 1);
                            assertTrue(Ops.maxAbsDiff(y.detach(), plain) < 1e-4, "forward " + s[0] + " -> " + s[1]);
                            // the transposed convolution is the same oneDNN kernel (NaN too): take the reference path
                            torch.globalContext().setUserEnabledMkldnn(false);
                            Tensor expected;
                            try {
                                expected = torch.conv_transpose2d(upstream, weight, new org.bytedeco.pytorch.TensorOptional(),
                                        new long[] {1, 1}, new long[] {1, 1}, new long[] {0, 0}, 1, new long[] {1, 1});
                            } finally {
                                torch.globalContext().setUserEnabledMkldnn(true);
                            }
                            assertTrue(Ops.maxAbsDiff(x.grad(), expected) < 1e-3, "input gradient " + s[0] + " -> " + s[1] + ": " + Ops.maxAbsDiff(x.grad(), expected) + " of " + Ops.maxAbs(expected));
                        }
                    }
                }
            }
        }
    }

    @Test
    void bf16ConvolutionIsRightForEveryChannelCount() {
        // Without Ops' full blocks, oneDNN's AVX512-BF16 kernel (CPUs without AMX, e.g. Zen 4) was 20-70% off, or NaN, for
        // channel counts that are not multiples of 16 (the UNet's conv_in and conv_out, the VAE's); full blocks are exact,
        // in bf16 and under autocast alike.
        List<String> wrong = new ArrayList<>();
        try (Scope scope = Scope.inference()) {
            for (long k : new long[] {1, 3}) {
                for (long in : new long[] {1, 3, 4, 8, 16, 17, 20, 24, 32, 40}) {
                    for (long out : new long[] {1, 3, 4, 16, 20, 32, 40}) {
                        Tensor x = new SeededNoise(in).randn(new long[] {2, in, 12, 12});
                        Tensor w = new SeededNoise(out).randn(new long[] {out, in, k, k}).mul(new Scalar(1.0 / Math.sqrt(in * k * k)));
                        Tensor b = new SeededNoise(7).randn(new long[] {out});
                        Tensor exact = Ops.conv2d(x.to(torch.ScalarType.Double), w.to(torch.ScalarType.Double), b.to(torch.ScalarType.Double), 1, k / 2);
                        Tensor bf16 = Ops.conv2d(x.to(torch.ScalarType.BFloat16), w.to(torch.ScalarType.BFloat16), b.to(torch.ScalarType.BFloat16), 1, k / 2);
                        long pad = k / 2; // mixed-precision training: fp32 tensors that autocast casts to bf16 inside the convolution
                        Tensor autocast = Autocast.bf16(() -> Ops.conv2d(x, w, b, 1, pad));
                        for (Tensor result : List.of(bf16, autocast)) {
                            Tensor d = result.to(torch.ScalarType.Double).sub(exact);
                            double relative = Math.sqrt(Ops.item(d.mul(d).mean()) / Ops.item(exact.mul(exact).mean()));
                            // bf16 rounding of inputs and output alone is about 0.003
                            if (!(relative < 0.01)) wrong.add((result == bf16 ? "bf16 " : "autocast ") + k + "x" + k + " " + in + "->" + out + ": " + relative);
                        }
                    }
                }
            }
        }
        assertEquals(List.of(), wrong);
    }

    /** Mixed precision: matrix products in bf16, attention still fp32 (its bf16 CPU backward is 5x slower), autocast off after. */
    @Test
    void autocastComputesMatrixProductsInBf16AndAttentionInFp32() {
        try (Scope scope = Scope.open()) {
            Tensor q = new SeededNoise(1).randn(new long[] {2, 4, 64, 8}), k = new SeededNoise(2).randn(new long[] {2, 4, 64, 8}),
                    v = new SeededNoise(3).randn(new long[] {2, 4, 64, 8});
            Tensor plain = Ops.attention(q, k, v, null, 0.35);
            List<Tensor> inside = Autocast.bf16(() -> List.of(Ops.matmul(q, k.transpose(2, 3)), Ops.attention(q, k, v, null, 0.35)));
            assertEquals(torch.ScalarType.BFloat16, inside.get(0).scalar_type().intern(), "a matrix product under autocast");
            assertEquals(torch.ScalarType.Float, inside.get(1).scalar_type().intern(), "attention under autocast");
            assertEquals(0.0, Ops.maxAbsDiff(plain, inside.get(1)), 1e-6);
            assertFalse(torch.is_autocast_enabled(torch.DeviceType.CPU), "autocast is off again after");
            assertEquals(torch.ScalarType.Float, Ops.matmul(q, k.transpose(2, 3)).scalar_type().intern());
        }
    }

    /**
     * The attention probabilities looked at (cross-attention maps, side steering, localization) are those the attention
     * weighs v with: in bf16 they were computed in bf16 while the attention itself ran in fp32, so a picture drawn in
     * bf16 changed with whether anyone looked. Now fp32 in both, under autocast too.
     */
    @Test
    void attentionProbabilitiesOfBf16InputsAreTheFp32OnesTheAttentionUses() {
        try (Scope scope = Scope.open()) {
            Tensor q = new SeededNoise(1).randn(new long[] {2, 4, 64, 8}).mul(new Scalar(3)), k = new SeededNoise(2).randn(new long[] {2, 4, 77, 8}),
                    v = new SeededNoise(3).randn(new long[] {2, 4, 77, 8});
            Tensor q16 = q.to(torch.ScalarType.BFloat16), k16 = k.to(torch.ScalarType.BFloat16), v16 = v.to(torch.ScalarType.BFloat16);
            for (boolean autocast : new boolean[] {false, true}) {
                Tensor p = autocast ? Autocast.bf16(() -> Ops.attentionProbabilities(q16, k16, null, 0.35)) : Ops.attentionProbabilities(q16, k16, null, 0.35);
                assertEquals(torch.ScalarType.Float, p.scalar_type().intern(), "autocast " + autocast);
                Tensor exact = Ops.attentionProbabilities(q16.to(torch.ScalarType.Float), k16.to(torch.ScalarType.Float), null, 0.35);
                assertEquals(0.0, Ops.maxAbsDiff(exact, p), 1e-6, "the fp32 probabilities of the bf16 inputs, autocast " + autocast);
            }
            Tensor attended = Ops.attention(q16, k16, v16, null, 0.35);
            Tensor weighed = Ops.weigh(Ops.attentionProbabilities(q16, k16, null, 0.35), v16);
            assertEquals(torch.ScalarType.BFloat16, weighed.scalar_type().intern(), "handed back in v's precision");
            assertEquals(0.0, Ops.maxAbsDiff(attended.to(torch.ScalarType.Float), weighed.to(torch.ScalarType.Float)), 0.02,
                    "what the attention computes, to bf16's rounding of its output");
        }
    }

    /** Small channels-last maps are normalised contiguous (libtorch's own path for them is slow): the same values, still channels-last. */
    @Test
    void groupNormOfAChannelsLastMapIsTheContiguousOnesAndStaysChannelsLast() {
        try (Scope scope = Scope.inference()) {
            for (long[] shape : new long[][] {{4, 64, 16, 16}, {2, 128, 8, 8}, {1, 32, 32, 32}, {2, 64, 32, 32}}) {
                for (torch.ScalarType type : List.of(torch.ScalarType.Float, torch.ScalarType.BFloat16)) {
                    Tensor x = new SeededNoise(shape[1]).randn(shape).to(type), weight = new SeededNoise(1).randn(new long[] {shape[1]}).to(type),
                            bias = new SeededNoise(2).randn(new long[] {shape[1]}).to(type);
                    Tensor contiguous = Ops.groupNorm(x, 16, weight, bias, 1e-6);
                    Tensor channelsLast = Ops.groupNorm(x.contiguous(torch.MemoryFormat.ChannelsLast), 16, weight, bias, 1e-6);
                    String what = java.util.Arrays.toString(shape) + " " + type;
                    assertTrue(channelsLast.is_contiguous(torch.MemoryFormat.ChannelsLast), what + ": stays channels-last");
                    double tolerance = type == torch.ScalarType.Float ? 1e-5 : 0.04; // bf16: a rounding step at |x| up to 4
                    assertTrue(Ops.maxAbsDiff(contiguous.to(torch.ScalarType.Float), channelsLast.to(torch.ScalarType.Float)) < tolerance, what);
                }
            }
        }
    }

    @Test
    void paddedConvolutionStillTrainsItsWeightAndBias() {
        try (Scope scope = Scope.open()) {
            Tensor weight = torch.randn(new long[] {4, 8, 3, 3}, new TensorOptions(torch.ScalarType.Float)).set_requires_grad(true);
            Tensor bias = torch.zeros(new long[] {4}, new TensorOptions(torch.ScalarType.Float)).set_requires_grad(true);
            Tensor x = torch.randn(new long[] {2, 8, 8, 8}, new TensorOptions(torch.ScalarType.Float)).set_requires_grad(true);
            Ops.conv2d(x, weight, bias, 1, 1).sum().backward();
            assertArrayEquals(new long[] {4, 8, 3, 3}, Ops.shape(weight.grad()));
            assertArrayEquals(new long[] {4}, Ops.shape(bias.grad()));
            // d(sum y)/d bias_c = the number of output positions
            assertEquals(2 * 8 * 8, Ops.toFloats(bias.grad())[3], 1e-3);
        }
    }

    @Test
    void chunksOutliveTheirScopeAndEachOther() {
        Tensor[] parts;
        try (Scope s = Scope.inference()) {
            parts = Ops.chunk(Ops.fromFloats(new float[] {1, 2, 3, 4, 5, 6}, 6), 2, 0);
            for (Tensor p : parts) Scope.keep(p);
        }
        System.gc();
        FreedMemory.poison(0);
        assertArrayEquals(new float[] {1, 2, 3}, Ops.toFloats(parts[0]));
        assertArrayEquals(new float[] {4, 5, 6}, Ops.toFloats(parts[1]));
    }

    @Test
    void finitenessIsCheckedAndNamed() {
        assertTrue(Ops.allFinite(Ops.fromFloats(new float[] {1, -2, 0}, 3)));
        assertFalse(Ops.allFinite(Ops.fromFloats(new float[] {1, Float.NaN}, 2)));
        assertFalse(Ops.allFinite(Ops.fromFloats(new float[] {Float.NEGATIVE_INFINITY}, 1)));
        NonFiniteException nan = assertThrows(NonFiniteException.class,
                () -> Ops.requireFinite(Ops.fromFloats(new float[] {0, Float.NaN}, 2), "the latents"));
        assertEquals("the latents is not finite (NaN values)", nan.getMessage());
        NonFiniteException inf = assertThrows(NonFiniteException.class,
                () -> Ops.requireFinite(Ops.fromFloats(new float[] {Float.POSITIVE_INFINITY}, 1), "v*"));
        assertTrue(inf.getMessage().contains("infinite"), inf.getMessage());
    }

    @Test
    void replacingAKeptTensorReleasesTheOldOne() {
        Tensor first, second;
        try (Scope s = Scope.inference()) {
            first = Scope.keep(Ops.fromFloats(new float[] {1}, 1));
        }
        assertEquals(1, first.referenceCount());
        try (Scope s = Scope.inference()) {
            second = Scope.replaceKept(first, Ops.fromFloats(new float[] {2}, 1));
        }
        assertTrue(first.isNull(), "the replaced tensor was freed");
        assertEquals(1, second.referenceCount());
        assertEquals(2f, Ops.toFloats(second)[0]);
    }
}
