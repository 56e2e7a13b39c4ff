package dev.perfusion.pretrain;

import dev.perfusion.nn.Module;
import dev.perfusion.pretrain.WorldBatches.Batch;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * One stage of pretraining, as {@link StageLoop} runs it: the modules it trains (created, then initialised or loaded,
 * when the stage is made), the loss of a batch, pictures of its EMA weights, and what it leaves in the work folder.
 */
interface Stage {
    /**
     * {@code name} names the stage's checkpoint, its lines in the loss log and its sample pictures; {@code activity}
     * and {@code lossName} are for the progress line. The learning rate warms up over {@code warmupSteps}, then decays.
     */
    record Plan(String name, String activity, String lossName, int steps, int warmupSteps, double learningRate, WorldBatches.Series data) {}

    /**
     * What backpropagates, and the loss to log (it may leave out regularisers); {@code regulariser}: what the stage's
     * {@link #regulariser} adds, before its weight (0 where it has none), logged on its own line.
     */
    record Loss(Tensor objective, double logged, double regulariser) {
        Loss(Tensor objective, double logged) {
            this(objective, logged, 0);
        }
    }

    Plan plan();

    List<Module> modules();

    /** The name under which the loss log keeps {@link Loss#regulariser}, or null where the stage has none. */
    default String regulariser() {
        return null;
    }

    /**
     * What the stage learns beside its modules' trained weights (a critic with an optimizer of its own), by name: saved
     * in its checkpoint with them, so that a resumed run goes on as one.
     */
    default java.util.Map<String, Tensor> learnedBeside() {
        return java.util.Map.of();
    }

    /** Takes back what {@link #learnedBeside} saved, the same names. */
    default void restoreBeside(java.util.Map<String, Tensor> saved) {}

    /** What a resumed stage does where its checkpoint holds nothing of {@link #learnedBeside} (written before it was kept). */
    default String withoutBeside() {
        return "";
    }

    /** Whether a parameter learns; the others keep their values, in the EMA copy too. */
    default boolean learns(String parameter) {
        return true;
    }

    /**
     * The work on a batch that does not depend on what the stage learns (its frozen encoders), or the batch as it is.
     * Where {@link #preparesBatches} says so, it runs on its own thread while the step before trains.
     */
    default Batch prepare(Batch batch) {
        return batch;
    }

    /** Whether {@link #prepare} does enough work to run beside the training step. */
    default boolean preparesBatches() {
        return false;
    }

    /** The forward pass on one (prepared) batch, in the training step's scope. */
    Loss loss(Batch batch, int step);

    /**
     * Whether {@link #loss(Batch, int, int, int)} splits a batch into parts, which then run side by side (each
     * part's forward and backward on one thread): for a stage whose step is too small to share out each operation.
     */
    default boolean splitsBatches() {
        return false;
    }

    /**
     * The forward pass on part {@code part} of {@code parts} of a (prepared) batch, in the part's own scope; the
     * parts' objectives and logged losses add up to the whole batch's.
     */
    default Loss loss(Batch batch, int step, int part, int parts) {
        if (parts != 1) throw new UnsupportedOperationException(plan().name() + " does not split its batches");
        return loss(batch, step);
    }

    /** Sample pictures of the EMA weights after {@code step} steps. */
    void samples(TrainedWeights weights, int step) throws IOException;

    /** Writes the stage's result from the EMA weights; returns the exported model's folder, or null where it exports none. */
    Path finish(TrainedWeights weights, double loss) throws IOException;
}
