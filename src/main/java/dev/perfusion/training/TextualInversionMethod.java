package dev.perfusion.training;

import dev.perfusion.nn.AdamW;
import dev.perfusion.perfusion.ProjectionEdit;
import dev.perfusion.unet.Attention;
import org.bytedeco.pytorch.Tensor;

import java.util.List;

/** Textual inversion (Gal et al.): the word embedding alone; the model is not changed. */
final class TextualInversionMethod implements ConceptMethod {
    @Override public String id() { return "textual-inversion"; }

    @Override public String summary() { return "the word embedding alone (Gal et al.)"; }

    @Override
    public ProjectionEdit initialEdit(List<Attention> layers, Tensor iSuper) { return ProjectionEdit.none(); }

    @Override
    public List<AdamW.Group> trainedTensors(ProjectionEdit edit, TrainingSettings settings) { return List.of(); }

    @Override
    public List<OperatingPoint> operatingPoints(List<Double> betas) {
        return List.of(new OperatingPoint("embedding", Double.NaN, false));
    }

    @Override public boolean learnsAnEdit() { return false; }

    @Override public String describeLearningRate(TrainingSettings settings) { return "no edit"; }

    @Override public String describeGate(TrainingSettings settings) { return "none"; }

    @Override public String describeKeys() { return "unchanged"; }
}
