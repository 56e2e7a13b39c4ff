package dev.perfusion.perfusion;

import org.bytedeco.pytorch.Tensor;

/**
 * What the gate needs to know about one learned concept: its target input {@code i*} (the EMA of the text
 * encoding at the concept token, [D]) and the sigmoid gate's threshold {@code beta} and temperature {@code tau}.
 * Training uses (0.75, 0.10); generation typically (0.70, 0.15) for local key locking, beta 0.4-0.6 for global.
 */
public record Concept(Tensor iStar, double beta, double tau) {
    public Concept {
        if (iStar == null || iStar.dim() != 1) throw new IllegalArgumentException("i* must be a vector [D]");
        if (!(tau > 0)) throw new IllegalArgumentException("gate temperature tau must be > 0, got " + tau);
        if (!Double.isFinite(beta)) throw new IllegalArgumentException("gate threshold beta must be finite");
    }

    public Concept withGate(double beta, double tau) { return new Concept(iStar, beta, tau); }

    public Concept withIStar(Tensor iStar) { return new Concept(iStar, beta, tau); }
}
