package dev.perfusion.pretrain;

import dev.perfusion.nn.Weights;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.unet.UNet2DConditionModel;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** A trained UNet widened: the wider one computes what the narrower did, and its copies of a channel can learn apart. */
class UNetWideningTest {
    private static final BaseModelRecipe RECIPE = BaseModelRecipe.frozenText();

    private static BaseModelRecipe widened(int factor) {
        return RECIPE.withUnetChannels(RECIPE.unetChannels().stream().map(c -> factor * c).toList());
    }

    @Test
    void theWiderUNetDrawsWhatTheNarrowerDid() {
        try (Scope s = Scope.inference()) {
            UNet2DConditionModel narrow = UNet2DConditionModel.create(RECIPE.unetConfig());
            Weights.initRandom(narrow, 5);
            torch.manual_seed(3);
            // biases and norms away from their initial 0 and 1, and conv_out away from 0, so that a misplaced weight shows
            for (var p : narrow.namedParameters().values()) p.set(Ops.add(p.t(), Ops.mul(torch.randn(p.shape()), 0.1)));
            Tensor before = UNetGrowthTest.predict(narrow);
            for (int factor : new int[] {2, 3}) {
                UNet2DConditionModel wide = UNet2DConditionModel.create(widened(factor).unetConfig());
                UNetWidening.load(wide, Weights.asStateDict(narrow, "narrow UNet"), factor, "test UNet", 7);
                assertEquals(factor * factor * narrow.namedParameters().get("mid_block.resnets.0.conv1.weight").t().numel(),
                        wide.namedParameters().get("mid_block.resnets.0.conv1.weight").t().numel());
                Tensor after = UNetGrowthTest.predict(wide);
                double scale = Ops.item(before.abs().max()), off = Ops.item(after.sub(before).abs().max());
                assertTrue(scale > 0.1 && off < 1e-4 * scale, factor + "x: off by " + off + " of " + scale);
            }
        }
    }

    @Test
    void theCopiesOfAChannelStartEqualAndReadTheirInputsAtDifferentShares() {
        // a 2x2 weight [out, in] widened 2x on both sides: rows repeated, each input's weight split in two random shares
        float[] old = {1, 2, 3, 4};
        float[] w = UNetWidening.widened("x.weight", old, new long[] {2, 2}, new long[] {4, 4}, 2, new SplittableRandom(1));
        for (int o = 0; o < 2; o++) {
            for (int i = 0; i < 2; i++) {
                float a = w[(2 * o) * 4 + 2 * i], b = w[(2 * o) * 4 + 2 * i + 1];
                assertEquals(old[o * 2 + i], a + b, 1e-6, "the shares of a weight sum to it");
                assertNotEquals(a, b, "equal shares would keep the copies equal for ever");
                assertTrue(a / b > 1.0 / 3.5 && a / b < 3.5, a + " and " + b);
                assertEquals(a, w[(2 * o + 1) * 4 + 2 * i], "both copies of an output read alike");
                assertEquals(b, w[(2 * o + 1) * 4 + 2 * i + 1]);
            }
        }
        // a bias [2] -> [4]: repeated
        assertArrayEquals(new float[] {5, 5, 6, 6}, UNetWidening.widened("x.bias", new float[] {5, 6}, new long[] {2}, new long[] {4}, 2, new SplittableRandom(1)));
    }

    @Test
    void theOldFrequenciesStandAtEveryKthPlaceOfTheLongerSinusoid() {
        // [cos f0, cos f1 | sin f0, sin f1] of 4 features -> 8: the old ones at 0, 2 | 4, 6
        assertEquals(List.of(0, 2, 4, 6), List.of(0, 1, 2, 3).stream().map(i -> UNetWidening.sinusoidPlace(i, 4, 2)).toList());
        float[] w = UNetWidening.widened("time_embedding.linear_1.weight", new float[] {1, 2, 3, 4}, new long[] {1, 4}, new long[] {2, 8}, 2, new SplittableRandom(1));
        assertArrayEquals(new float[] {1, 0, 2, 0, 3, 0, 4, 0, 1, 0, 2, 0, 3, 0, 4, 0}, w, "the new frequencies read at zero at first");
    }

    @Test
    void aUNetThatDoesNotWidenIsNamed() {
        try (Scope s = Scope.inference()) {
            UNet2DConditionModel narrow = UNet2DConditionModel.create(RECIPE.unetConfig());
            Weights.initRandom(narrow, 5);
            UNet2DConditionModel deeper = UNet2DConditionModel.create(widened(2).withUnetLayersPerBlock(2).unetConfig());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> UNetWidening.load(deeper, Weights.asStateDict(narrow, "narrow UNet"), 2, "test UNet", 7));
            assertTrue(e.getMessage().startsWith("cannot widen the test UNet 2x: ") && e.getMessage().contains("is missing"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> UNetWidening.load(narrow, Weights.asStateDict(narrow, "narrow UNet"), 1, "test UNet", 7));
        }
    }

    @Test
    void theWideningFactorIsTheSameWholeMultipleAtEveryLevel() {
        assertEquals(2, Pretrainer.widening(List.of(32, 64, 128), List.of(64, 128, 256)));
        assertEquals(1, Pretrainer.widening(List.of(32, 64, 128), List.of(32, 64, 128)));
        assertEquals(0, Pretrainer.widening(List.of(32, 64, 128), List.of(64, 128, 128)), "not at every level");
        assertEquals(0, Pretrainer.widening(List.of(32, 64, 128), List.of(48, 96, 192)), "not a whole multiple");
        assertEquals(0, Pretrainer.widening(List.of(32, 64, 128), List.of(64, 128)), "another number of levels");
    }
}
