package dev.perfusion.training;

import dev.perfusion.perfusion.ProjectionEdit;

import java.util.List;

/** Perfusion with the key targets trained too (the paper's ablation of key locking). */
final class TrainedKeysMethod extends RankOneMethod {
    TrainedKeysMethod() {
        super(ProjectionEdit.Kind.GATED_RANK_ONE, true);
    }

    @Override public String id() { return "trained-keys"; }

    @Override public String summary() { return "Perfusion with trained key targets (ablation of key locking)"; }

    @Override
    public List<OperatingPoint> operatingPoints(List<Double> betas) {
        return betas.stream().map(beta -> new OperatingPoint("local lock", beta, false)).toList();
    }

    @Override public String describeKeys() { return "trained (ablation)"; }
}
