package dev.perfusion.pretrain;

import dev.perfusion.nn.Param;
import dev.perfusion.nn.Weights;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.unet.UNet2DConditionModel;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** A trained UNet given a level more: every old weight in its place, the new layers starting near what it computed. */
class UNetLevelAddedTest {
    private static final BaseModelRecipe RECIPE = BaseModelRecipe.frozenText();
    private static final List<Integer> FOUR_LEVELS = List.of(32, 64, 128, 128);

    @Test
    void eachWeightComesFromItsPlaceInTheShallowerUNet() {
        assertEquals("conv_in.weight", UNetLevelAdded.shallowerName("conv_in.weight", 3));
        assertEquals("mid_block.attentions.0.proj_in.weight", UNetLevelAdded.shallowerName("mid_block.attentions.0.proj_in.weight", 3));
        assertEquals("down_blocks.2.resnets.0.conv1.weight", UNetLevelAdded.shallowerName("down_blocks.2.resnets.0.conv1.weight", 3));
        assertNull(UNetLevelAdded.shallowerName("down_blocks.2.downsamplers.0.conv.weight", 3), "the old deepest level had no downsampler");
        assertNull(UNetLevelAdded.shallowerName("down_blocks.2.attentions.0.proj_out.weight", 3), "nor cross-attention");
        assertNull(UNetLevelAdded.shallowerName("down_blocks.3.resnets.0.conv1.weight", 3));
        assertNull(UNetLevelAdded.shallowerName("up_blocks.0.resnets.1.conv_shortcut.weight", 3));
        assertEquals("up_blocks.0.resnets.1.conv1.weight", UNetLevelAdded.shallowerName("up_blocks.1.resnets.1.conv1.weight", 3));
        assertNull(UNetLevelAdded.shallowerName("up_blocks.1.attentions.0.proj_in.weight", 3), "the old deepest up block had no cross-attention");
        assertEquals("up_blocks.2.attentions.1.proj_in.weight", UNetLevelAdded.shallowerName("up_blocks.3.attentions.1.proj_in.weight", 3));
    }

    @Test
    void theUNetWithALevelMoreStartsNearWhatTheShallowerDrew() {
        try (Scope s = Scope.inference()) {
            torch.manual_seed(3);
            UNet2DConditionModel shallow = UNetGrowthTest.unet(1, 5);
            Tensor before = UNetGrowthTest.predict(shallow);
            UNet2DConditionModel deeper = UNet2DConditionModel.create(RECIPE.withUnetChannels(FOUR_LEVELS).unetConfig());
            UNetLevelAdded.load(deeper, Weights.asStateDict(shallow, "shallow UNet"), 3, "test UNet", 7);
            for (Map.Entry<String, Param> e : shallow.namedParameters().entrySet()) {
                String name = e.getKey(), placed = name.startsWith("up_blocks.") ? "up_blocks." + (Integer.parseInt(name.split("\\.")[1]) + 1) + name.substring(11) : name;
                assertEquals(0.0, Ops.item(deeper.namedParameters().get(placed).t().sub(e.getValue().t()).abs().max()), name + " -> " + placed);
            }
            double scale = Ops.item(before.abs().mean());
            double near = Ops.item(UNetGrowthTest.predict(deeper).sub(before).abs().mean());
            // the same old weights with the new layers as a fresh UNet's: where an untended new level would start
            UNet2DConditionModel fresh = UNet2DConditionModel.create(RECIPE.withUnetChannels(FOUR_LEVELS).unetConfig());
            Weights.initRandom(fresh, 9);
            for (Map.Entry<String, Param> e : deeper.namedParameters().entrySet()) {
                if (UNetLevelAdded.shallowerName(e.getKey(), 3) == null) e.getValue().set(fresh.namedParameters().get(e.getKey()).t());
            }
            double untended = Ops.item(UNetGrowthTest.predict(deeper).sub(before).abs().mean());
            assertTrue(near < 0.7 * untended && near < 0.5 * scale, "off by " + near + " of " + scale + " (new layers random: " + untended + ")");
        }
    }

    @Test
    void theNewDownsamplerAveragesEachCellAndTheNewUpsamplerPassesOn() {
        try (Scope s = Scope.inference()) {
            UNet2DConditionModel shallow = UNetGrowthTest.unet(1, 5);
            UNet2DConditionModel deeper = UNet2DConditionModel.create(RECIPE.withUnetChannels(FOUR_LEVELS).unetConfig());
            UNetLevelAdded.load(deeper, Weights.asStateDict(shallow, "shallow UNet"), 3, "test UNet", 7);
            Map<String, Param> p = deeper.namedParameters();
            Tensor map = torch.randn(1, 128, 8, 8);
            Tensor down = Ops.conv2d(map, p.get("down_blocks.2.downsamplers.0.conv.weight").t(), p.get("down_blocks.2.downsamplers.0.conv.bias").t(), 2, 1);
            assertTrue(Ops.item(down.sub(Ops.avgPool2d(map, 2)).abs().max()) < 1e-6);
            Tensor same = Ops.conv2d(map, p.get("up_blocks.0.upsamplers.0.conv.weight").t(), p.get("up_blocks.0.upsamplers.0.conv.bias").t(), 1, 1);
            assertTrue(Ops.item(same.sub(map).abs().max()) < 1e-6);
        }
    }

    @Test
    void onlyTheDeepestLevelRepeatedIsALevelAdded() {
        assertTrue(Pretrainer.levelAdded(List.of(32, 64, 128), FOUR_LEVELS));
        assertFalse(Pretrainer.levelAdded(List.of(32, 64, 128), List.of(32, 64, 128, 256)));
        assertFalse(Pretrainer.levelAdded(List.of(32, 64, 128), List.of(32, 64, 128)));
        try (Scope s = Scope.inference()) {
            UNet2DConditionModel deeper = UNet2DConditionModel.create(RECIPE.withUnetChannels(List.of(32, 64, 128, 256)).unetConfig());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> UNetLevelAdded.load(deeper, Weights.asStateDict(UNetGrowthTest.unet(1, 5), "shallow UNet"), 3, "test UNet", 7));
            assertTrue(e.getMessage().contains("[32, 64, 128, 256] must be its own with the deepest repeated once more"), e.getMessage());
        }
    }
}
