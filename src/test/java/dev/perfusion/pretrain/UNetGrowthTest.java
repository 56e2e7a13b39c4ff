package dev.perfusion.pretrain;

import dev.perfusion.io.StateDict;
import dev.perfusion.nn.Weights;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.unet.UNet2DConditionModel;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** A trained UNet deepened: the deeper one computes what the shallower did, and its new layers are new weights. */
class UNetGrowthTest {
    private static final BaseModelRecipe RECIPE = BaseModelRecipe.frozenText();

    static UNet2DConditionModel unet(int layers, long seed) {
        UNet2DConditionModel u = UNet2DConditionModel.create(RECIPE.withUnetLayersPerBlock(layers).unetConfig());
        Weights.initRandom(u, seed);
        // biases and norms away from their initial 0 and 1, so that a weight loaded into the wrong place shows
        for (var p : u.namedParameters().values()) {
            if (p.shape().length == 1) p.set(Ops.add(p.t(), Ops.mul(torch.randn(p.shape()), 0.1)));
        }
        return u;
    }

    /** The UNet's prediction for fixed random latents, timesteps and encodings of the recipe's shapes. */
    static Tensor predict(UNet2DConditionModel u) {
        torch.manual_seed(11);
        Tensor x = torch.randn(2, RECIPE.latentChannels(), 16, 16), encodings = torch.randn(2, 32, RECIPE.textHidden());
        Tensor t = Ops.fromFloats(new float[] {10, 700}, 2);
        return u.forward(x, t, encodings);
    }

    @Test
    void theDeeperUNetDrawsWhatTheShallowerDid() {
        try (Scope s = Scope.inference()) {
            torch.manual_seed(3);
            UNet2DConditionModel shallow = unet(1, 5);
            Tensor before = predict(shallow);
            for (int layers : new int[] {2, 3}) {
                UNet2DConditionModel deeper = UNet2DConditionModel.create(RECIPE.withUnetLayersPerBlock(layers).unetConfig());
                UNetGrowth.load(deeper, Weights.asStateDict(shallow, "shallow UNet"), 1, "test UNet", 7);
                assertTrue(deeper.namedParameters().size() > shallow.namedParameters().size());
                Tensor after = predict(deeper);
                double scale = Ops.item(before.abs().max()), off = Ops.item(after.sub(before).abs().max());
                assertTrue(scale > 0.1 && off < 1e-5 * scale, layers + " layers: off by " + off + " of " + scale);
                // the new layers are not empty: their first convolutions are random, ready to learn once conv2 moves
                assertTrue(Ops.item(deeper.namedParameters().get("down_blocks.0.resnets.1.conv1.weight").t().abs().max()) > 0);
            }
        }
    }

    @Test
    void eachWeightComesFromItsPlaceInTheShallowerUNet() {
        assertEquals("conv_in.weight", UNetGrowth.shallowerName("conv_in.weight", 1, 2));
        assertEquals("down_blocks.1.resnets.0.conv1.weight", UNetGrowth.shallowerName("down_blocks.1.resnets.0.conv1.weight", 1, 2));
        assertNull(UNetGrowth.shallowerName("down_blocks.1.resnets.1.conv1.weight", 1, 2), "appended after the old layer");
        assertNull(UNetGrowth.shallowerName("down_blocks.0.attentions.1.proj_out.weight", 1, 2));
        assertEquals("up_blocks.2.resnets.0.norm1.weight", UNetGrowth.shallowerName("up_blocks.2.resnets.0.norm1.weight", 1, 2));
        assertNull(UNetGrowth.shallowerName("up_blocks.2.resnets.1.norm1.weight", 1, 2), "new, right after the first");
        assertEquals("up_blocks.2.attentions.1.proj_in.weight", UNetGrowth.shallowerName("up_blocks.2.attentions.2.proj_in.weight", 1, 2),
                "the old second, now third");
        assertEquals("up_blocks.0.upsamplers.0.conv.weight", UNetGrowth.shallowerName("up_blocks.0.upsamplers.0.conv.weight", 1, 3));
        assertEquals("up_blocks.0.resnets.1.conv2.weight", UNetGrowth.shallowerName("up_blocks.0.resnets.3.conv2.weight", 1, 3));
    }

    @Test
    void aUNetThatDoesNotFitIsNamed() {
        try (Scope s = Scope.inference()) {
            UNet2DConditionModel shallow = unet(1, 5), deeper = UNet2DConditionModel.create(RECIPE.withUnetLayersPerBlock(2).unetConfig());
            StateDict all = Weights.asStateDict(shallow, "shallow UNet");
            IllegalArgumentException notDeeper = assertThrows(IllegalArgumentException.class,
                    () -> UNetGrowth.load(shallow, all, 1, "test UNet", 7));
            assertEquals("cannot deepen the test UNet from 1 to 1 layers per level", notDeeper.getMessage());
            StateDict lacking = new StateDict() {
                @Override public java.util.Set<String> keys() {
                    java.util.Set<String> k = new java.util.TreeSet<>(all.keys());
                    k.remove("mid_block.resnets.0.conv1.weight");
                    return k;
                }
                @Override public Tensor get(String name) { return all.get(name); }
                @Override public long[] shape(String name) { return all.shape(name); }
                @Override public String describe(String name) { return all.describe(name); }
            };
            IllegalArgumentException missing = assertThrows(IllegalArgumentException.class, () -> UNetGrowth.load(deeper, lacking, 1, "test UNet", 7));
            assertTrue(missing.getMessage().startsWith("cannot deepen the test UNet (1 -> 2 layers per level): mid_block.resnets.0.conv1.weight is missing"),
                    missing.getMessage());
        }
    }
}
