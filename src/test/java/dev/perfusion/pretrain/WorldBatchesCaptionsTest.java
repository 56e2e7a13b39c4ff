package dev.perfusion.pretrain;

import dev.perfusion.tensor.Scope;
import dev.perfusion.world.Labels;
import dev.perfusion.world.Placement;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The diffusion stage's captions leave out only the middle placement where the recipe says so; the text tower's stay as they were. */
class WorldBatchesCaptionsTest {
    private static final int PICTURES = 96;

    @Test
    void theDiffusionStageNamesEveryPlaceButTheMiddleWhereTheRecipeSaysSo() {
        BaseModelRecipe before = BaseModelRecipe.standard().withImageSize(32), middle = before.withUnnamedPlacementMiddle(true);
        WorldBatches.Series diffusion = new WorldBatches.Series(11, PICTURES, true), contrastive = new WorldBatches.Series(11, PICTURES, true, false);
        assertEquals(0, unnamedOtherPlaces(middle, diffusion), "with the recipe's middle, only the middle goes unnamed");
        assertTrue(unnamedOtherPlaces(before, diffusion) > 3, "before it, any place went unnamed");
        assertEquals(drawn(before, contrastive).captions(), drawn(middle, contrastive).captions(), "the text tower's captions as before");
    }

    /** One-object captions (not empty) that do not name their object's place, which is not the middle. */
    private static long unnamedOtherPlaces(BaseModelRecipe recipe, WorldBatches.Series series) {
        Drawn drawn = drawn(recipe, series);
        List<Labels> labels = drawn.labels();
        List<String> captions = drawn.captions();
        long unnamed = 0;
        for (int i = 0; i < captions.size(); i++) {
            Placement place = labels.get(i).spec().primary().placement();
            if (labels.get(i).spec().second() == null && !captions.get(i).isEmpty() && place != Placement.CENTER
                    && !captions.get(i).contains(place.phrase())) unnamed++;
        }
        return unnamed;
    }

    private record Drawn(List<Labels> labels, List<String> captions) {}

    /** Step 0's labels and captions (its tensors freed). */
    private static Drawn drawn(BaseModelRecipe recipe, WorldBatches.Series series) {
        try (WorldBatches batches = new WorldBatches(recipe); Scope s = Scope.inference()) {
            WorldBatches.Batch batch = batches.now(series, 0);
            return new Drawn(batch.labels(), batch.captions());
        }
    }
}
