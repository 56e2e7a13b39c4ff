package dev.perfusion.training;

import dev.perfusion.perfusion.ProjectionEdit;

import java.util.ArrayList;
import java.util.List;

/**
 * Perfusion (paper §3): keys locked to the supercategory's, values learned, the edit applied through the sigmoid
 * gate; judged over the gate threshold beta, with local and with global key locking.
 */
final class PerfusionMethod extends RankOneMethod {
    PerfusionMethod() {
        super(ProjectionEdit.Kind.GATED_RANK_ONE, false);
    }

    @Override public String id() { return "perfusion"; }

    @Override public String summary() { return "key-locked, gated rank-one edit (the paper's method)"; }

    @Override
    public List<OperatingPoint> operatingPoints(List<Double> betas) {
        List<OperatingPoint> points = new ArrayList<>();
        for (boolean global : List.of(false, true)) {
            for (double beta : betas) points.add(new OperatingPoint(global ? "global lock" : "local lock", beta, global));
        }
        return points;
    }
}
