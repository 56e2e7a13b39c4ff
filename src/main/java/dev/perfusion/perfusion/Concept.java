package dev.perfusion.perfusion;

import org.bytedeco.pytorch.Tensor;

/**
 * What the gate needs to know about one learned concept: its target input {@code i*} (the EMA of the text
 * encoding at the concept token, [D]) and the sigmoid gate's threshold {@code beta} and temperature {@code tau}.
 * Training uses (0.75, 0.10); generation typically (0.70, 0.15) for local key locking, beta 0.4-0.6 for global.
 */
public record Concept(Tensor iStar, double beta, double tau) {
    /** The gate a concept is generated with unless the user moves it (the paper's choice for local key locking). */
    public static final double GENERATION_BETA = 0.7, GENERATION_TAU = 0.15;
    /**
     * The fraction of a picture's denoising steps that the base model draws with the supercategory word before the
     * concepts take over ({@link AppliedConcepts#startingAt}); the paper's is 0.
     */
    public static final double GENERATION_CONCEPT_START = 0.2;

    public Concept {
        if (iStar == null || iStar.dim() != 1) throw new IllegalArgumentException("i* must be a vector [D]");
        checkBeta(beta);
        checkTau(tau);
    }

    /**
     * The one rule for a gate threshold, in training and generation alike: s is 1 at the concept's own input and
     * about 0 far from it, so a beta outside (-1, 2) gates every token fully on or fully off.
     */
    public static double checkBeta(double beta) {
        if (!(beta > -1 && beta < 2)) throw new IllegalArgumentException("the gate threshold beta must be in (-1, 2), got " + beta);
        return beta;
    }

    /** The one rule for a gate temperature: positive, and at most 1 (beyond it the sigmoid is nearly flat over s). */
    public static double checkTau(double tau) {
        if (!(tau > 0 && tau <= 1)) throw new IllegalArgumentException("the gate temperature tau must be in (0, 1], got " + tau);
        return tau;
    }

    /** The one rule for a concept start: a fraction of the steps, below 1 (at 1 the concepts would draw nothing). */
    public static double checkConceptStart(double conceptStart) {
        if (!(conceptStart >= 0 && conceptStart < 1)) {
            throw new IllegalArgumentException("the concept start must be a fraction of the denoising steps in [0, 1), got " + conceptStart);
        }
        return conceptStart;
    }

    public Concept withGate(double beta, double tau) { return new Concept(iStar, beta, tau); }

    public Concept withIStar(Tensor iStar) { return new Concept(iStar, beta, tau); }
}
