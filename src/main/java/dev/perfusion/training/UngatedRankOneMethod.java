package dev.perfusion.training;

import dev.perfusion.perfusion.ProjectionEdit;

import java.util.List;

/** Perfusion's edit with the sigmoid gate replaced by s: ROME's closed form, trained end to end (ablation of the gate). */
final class UngatedRankOneMethod extends RankOneMethod {
    UngatedRankOneMethod() {
        super(ProjectionEdit.Kind.RANK_ONE, false);
    }

    @Override public String id() { return "ungated-rome"; }

    @Override public String summary() { return "the rank-one edit without the gate (ROME's form; ablation)"; }

    @Override
    public List<OperatingPoint> operatingPoints(List<Double> betas) {
        return List.of(new OperatingPoint("no gate", Double.NaN, false));
    }

    @Override public String describeGate(TrainingSettings settings) { return "none (linear)"; }
}
