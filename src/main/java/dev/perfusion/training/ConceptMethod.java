package dev.perfusion.training;

import dev.perfusion.nn.AdamW;
import dev.perfusion.perfusion.ProjectionEdit;
import dev.perfusion.unet.Attention;
import org.bytedeco.pytorch.Tensor;

import java.util.List;

/**
 * One way of learning a concept from a few photos. Every method learns the word embedding v* and tracks the target
 * input i*; a method adds what it trains beside them: the edit of the cross-attention projections it starts from,
 * which of the edit's tensors it trains, and the operating points it is judged at. The trainer, the concept file
 * and the evaluation work through this shape alone; a new method is one class and one line in
 * {@link ConceptMethods}.
 */
public interface ConceptMethod {
    /** An operating point of a trained concept: how the evaluation draws it (beta NaN: the concept's default). */
    record OperatingPoint(String variant, double beta, boolean globalKeyLocking) {}

    /** The name in the command line, concept files and reports. */
    String id();

    /** One line for the command line's help. */
    String summary();

    /**
     * The edit before training, from each cross-attention layer's projections and the supercategory's mean
     * encoding i_super; the tensors to be trained are leaves with requires_grad, kept beyond the caller's scope.
     */
    ProjectionEdit initialEdit(List<Attention> layers, Tensor iSuper);

    /** The edit's tensors the optimizer trains, with their learning rates, named as in the concept file. */
    List<AdamW.Group> trainedTensors(ProjectionEdit edit, TrainingSettings settings);

    /** Where the evaluation draws the method's concepts, given the protocol's gate thresholds. */
    List<OperatingPoint> operatingPoints(List<Double> betas);

    /** The learning rates of {@link #trainedTensors} in words, for the concept file. */
    String describeLearningRate(TrainingSettings settings);

    /** The gate while training, in words, for the concept file. */
    default String describeGate(TrainingSettings settings) {
        return "beta " + settings.trainBeta() + ", tau " + settings.trainTau();
    }

    /** Whether the method trains tensors of its own beside the embedding (so the embedding may stay fixed). */
    default boolean learnsAnEdit() { return true; }

    /** What happens to the keys, in words, for the concept file. */
    default String describeKeys() { return "locked"; }
}
