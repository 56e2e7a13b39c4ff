package dev.perfusion.training;

import dev.perfusion.nn.AdamW;
import dev.perfusion.perfusion.GatedRankOneProjection.Role;
import dev.perfusion.perfusion.ProjectionEdit;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.unet.Attention;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * Custom Diffusion's recipe (Kumari et al.): the word embedding and every cross-attention K and V weight matrix
 * fine-tuned whole. Its concept file holds the tuned matrices, so it is as large as the layers.
 */
final class KvFineTuneMethod implements ConceptMethod {
    /** Whole matrices move far with the edit's learning rate; this is Custom Diffusion's order of magnitude. */
    static final double LEARNING_RATE = 1e-4;

    @Override public String id() { return "kv-finetune"; }

    @Override public String summary() { return "every cross-attention K and V matrix fine-tuned (Custom Diffusion)"; }

    @Override
    public ProjectionEdit initialEdit(List<Attention> layers, Tensor iSuper) {
        List<Tensor> keys = new ArrayList<>(), values = new ArrayList<>();
        for (Attention a : layers) {
            keys.add(Scope.keep(Ops.trainableCopy(a.originalKey().weight())));
            values.add(Scope.keep(Ops.trainableCopy(a.originalValue().weight())));
        }
        return new ProjectionEdit(ProjectionEdit.Kind.WEIGHTS, keys, values);
    }

    @Override
    public List<AdamW.Group> trainedTensors(ProjectionEdit edit, TrainingSettings settings) {
        List<AdamW.Group> groups = new ArrayList<>();
        for (int l = 0; l < edit.layerCount(); l++) {
            groups.add(new AdamW.Group(edit.tensorName(l, Role.KEY), edit.keys().get(l), LEARNING_RATE));
            groups.add(new AdamW.Group(edit.tensorName(l, Role.VALUE), edit.values().get(l), LEARNING_RATE));
        }
        return groups;
    }

    @Override
    public List<OperatingPoint> operatingPoints(List<Double> betas) {
        return List.of(new OperatingPoint("tuned K/V", Double.NaN, false));
    }

    @Override public String describeLearningRate(TrainingSettings settings) { return "K/V weights " + LEARNING_RATE; }

    @Override public String describeGate(TrainingSettings settings) { return "none"; }

    @Override public String describeKeys() { return "fine-tuned with the values"; }
}
