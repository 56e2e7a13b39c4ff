package dev.perfusion.training;

import dev.perfusion.perfusion.Concept;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * How one concept is trained; {@link #defaults()} are the paper's (Perfusion, 400 steps, effective batch 16,
 * learning rates 0.006 for v* and 0.03 for the edit, the training gate (0.75, 0.1), i* as a 0.99 moving average), with
 * the loss weighted by the zero-shot attention mask, which the paper does not use: on the bundled model it lifts both
 * identification and alignment (README, "Masks" under "Personalize"). Changed through {@link #toBuilder()}.
 *
 * @param batchSize            pictures per micro-step
 * @param gradientAccumulation micro-steps per optimizer step
 * @param embeddingLr          learning rate of the word embedding v*; 0: v* stays the supercategory's embedding
 * @param editLr               learning rate of the method's own tensors (o*_V, and o*_K where keys are trained)
 * @param trainBeta            gate threshold while training
 * @param trainTau             gate temperature while training
 * @param iStarDecay           weight of the old i* in its moving average
 * @param viewsPerImage        augmented views (crops, flips) made of each photo
 * @param resolution           training picture size; 0: the model's own
 * @param maskFloor            loss weight outside the concept's mask
 * @param checkpointEvery      steps between resumable checkpoints; 0: none
 * @param sampleEvery          steps between sample pictures; 0: none
 * @param attentionMasks       weigh the loss by the model's own cross-attention to the supercategory (zero-shot masks)
 * @param iStarAfterObjects    track i* over the word's encodings after another object's words too ("a dog on the left
 *                             and a {} on the right"), not only in the training prompts: a causal text encoder's
 *                             encoding of a word changes with the words before it, so the gate of a concept named
 *                             second opens less ({@link ConceptTrainer#AFTER_OBJECT_TEMPLATES})
 */
public record TrainingSettings(ConceptMethod method, int steps, int batchSize, int gradientAccumulation, double embeddingLr,
                               double editLr, double weightDecay, double trainBeta, double trainTau, double iStarDecay,
                               long seed, int viewsPerImage, TrainingImages.Fit fit, int resolution, double maskFloor,
                               int checkpointEvery, int sampleEvery, boolean attentionMasks,
                               boolean iStarAfterObjects) {
    /**
     * The loss mask a user gets unless asked otherwise, by name ({@code train --mask}, {@code eval --mask}, the web app):
     * the zero-shot attention mask, which {@link #defaults()} turns on (README, "Masks"). The paper uses none.
     */
    public static final String DEFAULT_MASK = "attention";

    public TrainingSettings {
        if (method == null) throw new IllegalArgumentException("no concept method given");
        positive("training steps", steps);
        positive("batch size", batchSize);
        positive("gradient accumulation", gradientAccumulation);
        positive("views per image", viewsPerImage);
        if (!(editLr > 0) || Double.isInfinite(editLr)) throw new IllegalArgumentException("the edit's learning rate must be positive and finite, got " + editLr);
        if (!(embeddingLr >= 0) || Double.isInfinite(embeddingLr)) {
            throw new IllegalArgumentException("the embedding's learning rate must be 0 (keep the supercategory's) or positive and finite, got " + embeddingLr);
        }
        if (embeddingLr == 0 && !method.learnsAnEdit()) {
            throw new IllegalArgumentException(method.id() + " learns only the word's embedding, so its learning rate must be positive");
        }
        if (!(weightDecay >= 0 && weightDecay < 1)) throw new IllegalArgumentException("weight decay must be in [0, 1), got " + weightDecay);
        Concept.checkBeta(trainBeta);
        Concept.checkTau(trainTau);
        if (!(iStarDecay >= 0 && iStarDecay < 1)) throw new IllegalArgumentException("the decay of i*'s moving average must be in [0, 1), got " + iStarDecay);
        if (resolution < 0) throw new IllegalArgumentException("the training resolution must be positive (or 0 for the model's own), got " + resolution);
        if (!(maskFloor >= 0 && maskFloor <= 1)) throw new IllegalArgumentException("the mask floor must be in [0, 1], got " + maskFloor);
        if (checkpointEvery < 0 || sampleEvery < 0) throw new IllegalArgumentException("checkpoint and sample intervals must not be negative");
    }

    private static void positive(String what, int value) {
        if (value < 1) throw new IllegalArgumentException(what + " must be at least 1, got " + value);
    }

    /** The paper's learning rates: the embedding slower than the edit (method notes §3.4). */
    public static final double EMBEDDING_LR = 0.006, EDIT_LR = 0.03;

    /** The paper's gate while training (method notes §4.2); generation moves it, {@link Concept#GENERATION_BETA}. */
    public static final double TRAIN_BETA = 0.75, TRAIN_TAU = 0.1;

    public static TrainingSettings defaults() {
        return new TrainingSettings(ConceptMethods.PERFUSION, 400, 4, 4, EMBEDDING_LR, EDIT_LR, 0.01, TRAIN_BETA, TRAIN_TAU, 0.99, 1, 8,
                TrainingImages.Fit.CROP, 0, 0.1, 50, 100, true, false);
    }

    public Builder toBuilder() { return new Builder(this); }

    /** What the concept file records of how it was made (shown by {@code inspect}). */
    public Map<String, String> describe() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("steps", Integer.toString(steps));
        m.put("batch", batchSize + "x" + gradientAccumulation);
        m.put("lr", "embedding " + embeddingLr + ", " + method.describeLearningRate(this));
        m.put("gate", method.describeGate(this));
        m.put("seed", Long.toString(seed));
        m.put("method", method.id());
        m.put("keys", method.describeKeys());
        m.put("mask", attentionMasks ? "zero-shot cross-attention" : "files or none");
        if (iStarAfterObjects) m.put("i*", "the training prompts and after another object");
        return m;
    }

    /** The mutable twin of the settings, so that a caller changes what it means and keeps the rest. */
    public static final class Builder {
        private ConceptMethod method;
        private int steps, batchSize, gradientAccumulation, viewsPerImage, resolution, checkpointEvery, sampleEvery;
        private double embeddingLr, editLr, weightDecay, trainBeta, trainTau, iStarDecay, maskFloor;
        private long seed;
        private TrainingImages.Fit fit;
        private boolean attentionMasks, iStarAfterObjects;

        private Builder(TrainingSettings s) {
            method = s.method;
            steps = s.steps;
            batchSize = s.batchSize;
            gradientAccumulation = s.gradientAccumulation;
            embeddingLr = s.embeddingLr;
            editLr = s.editLr;
            weightDecay = s.weightDecay;
            trainBeta = s.trainBeta;
            trainTau = s.trainTau;
            iStarDecay = s.iStarDecay;
            seed = s.seed;
            viewsPerImage = s.viewsPerImage;
            fit = s.fit;
            resolution = s.resolution;
            maskFloor = s.maskFloor;
            checkpointEvery = s.checkpointEvery;
            sampleEvery = s.sampleEvery;
            attentionMasks = s.attentionMasks;
            iStarAfterObjects = s.iStarAfterObjects;
        }

        public Builder method(ConceptMethod m) { method = m; return this; }
        public Builder steps(int s) { steps = s; return this; }
        /** {@code size} pictures per micro-step, {@code accumulation} micro-steps per optimizer step. */
        public Builder batch(int size, int accumulation) { batchSize = size; gradientAccumulation = accumulation; return this; }
        public Builder learningRates(double embedding, double edit) { embeddingLr = embedding; editLr = edit; return this; }
        public Builder weightDecay(double d) { weightDecay = d; return this; }
        public Builder trainingGate(double beta, double tau) { trainBeta = beta; trainTau = tau; return this; }
        public Builder iStarDecay(double d) { iStarDecay = d; return this; }
        public Builder seed(long s) { seed = s; return this; }
        /** How photos become square training views, how many per photo, and their size (0: the model's). */
        public Builder images(TrainingImages.Fit f, int views, int size) { fit = f; viewsPerImage = views; resolution = size; return this; }
        public Builder maskFloor(double f) { maskFloor = f; return this; }
        /** Steps between checkpoints and between sample pictures (0: none). */
        public Builder schedule(int checkpoints, int samples) { checkpointEvery = checkpoints; sampleEvery = samples; return this; }
        public Builder attentionMasks(boolean a) { attentionMasks = a; return this; }
        public Builder iStarAfterObjects(boolean a) { iStarAfterObjects = a; return this; }

        public TrainingSettings build() {
            return new TrainingSettings(method, steps, batchSize, gradientAccumulation, embeddingLr, editLr, weightDecay,
                    trainBeta, trainTau, iStarDecay, seed, viewsPerImage, fit, resolution, maskFloor, checkpointEvery,
                    sampleEvery, attentionMasks, iStarAfterObjects);
        }
    }
}
