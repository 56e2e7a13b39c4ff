package dev.perfusion.training;

import dev.perfusion.nn.AdamW;
import dev.perfusion.perfusion.GatedRankOneProjection;
import dev.perfusion.perfusion.GatedRankOneProjection.Role;
import dev.perfusion.perfusion.ProjectionEdit;
import dev.perfusion.unet.Attention;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * The methods that edit every layer by rank one, toward a key target o*_K and a value target o*_V that start at
 * W_K i_super and W_V i_super: Perfusion and its ablations. The value target is always trained; the key target is
 * locked unless the method trains keys.
 */
abstract class RankOneMethod implements ConceptMethod {
    private final ProjectionEdit.Kind kind;
    private final boolean trainsKeys;

    RankOneMethod(ProjectionEdit.Kind kind, boolean trainsKeys) {
        this.kind = kind;
        this.trainsKeys = trainsKeys;
    }

    @Override
    public ProjectionEdit initialEdit(List<Attention> layers, Tensor iSuper) {
        List<Tensor> keys = new ArrayList<>(), values = new ArrayList<>();
        for (Attention a : layers) {
            keys.add(trainsKeys ? GatedRankOneProjection.trainableValueTarget(a.originalKey(), iSuper)
                    : GatedRankOneProjection.lockedKeyTarget(a.originalKey(), iSuper));
            values.add(GatedRankOneProjection.trainableValueTarget(a.originalValue(), iSuper));
        }
        return new ProjectionEdit(kind, keys, values);
    }

    @Override
    public List<AdamW.Group> trainedTensors(ProjectionEdit edit, TrainingSettings settings) {
        List<AdamW.Group> groups = new ArrayList<>();
        for (int l = 0; l < edit.layerCount(); l++) {
            groups.add(new AdamW.Group(edit.tensorName(l, Role.VALUE), edit.values().get(l), settings.editLr()));
            if (trainsKeys) groups.add(new AdamW.Group(edit.tensorName(l, Role.KEY), edit.keys().get(l), settings.editLr()));
        }
        return groups;
    }

    @Override
    public String describeLearningRate(TrainingSettings settings) {
        return (trainsKeys ? "key and value targets " : "value targets ") + settings.editLr();
    }
}
