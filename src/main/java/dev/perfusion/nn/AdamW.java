package dev.perfusion.nn;

import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * AdamW (Loshchilov and Hutter) with parameter groups of their own learning rates, PyTorch's defaults
 * (betas 0.9/0.999, eps 1e-8) and decoupled weight decay. Updates the leaf tensors in place.
 */
public final class AdamW {
    /** A trained tensor with its learning rate. */
    public record Group(String name, Tensor tensor, double lr) {}

    private final List<Group> groups;
    private final List<Tensor> m = new ArrayList<>();
    private final List<Tensor> v = new ArrayList<>();
    private final double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
    private final double weightDecay;
    private long step;
    private double lrScale = 1.0;

    public AdamW(List<Group> groups, double weightDecay) {
        this.groups = List.copyOf(groups);
        this.weightDecay = weightDecay;
        for (Group g : groups) {
            m.add(Scope.keep(Ops.zerosLike(g.tensor().detach())));
            v.add(Scope.keep(Ops.zerosLike(g.tensor().detach())));
        }
    }

    public void step() {
        step++;
        double c1 = 1 - Math.pow(beta1, step), c2 = 1 - Math.pow(beta2, step);
        try (Scope s = Scope.inference(); NoGradGuard ng = new NoGradGuard()) {
            for (int i = 0; i < groups.size(); i++) {
                Group g = groups.get(i);
                Tensor grad = g.tensor().grad();
                if (!grad.defined()) continue;
                Tensor p = g.tensor();
                p.mul_(new Scalar(1 - g.lr() * lrScale * weightDecay));
                m.get(i).mul_(new Scalar(beta1)).add_(grad, new Scalar(1 - beta1));
                v.get(i).mul_(new Scalar(beta2)).add_(grad.mul(grad), new Scalar(1 - beta2));
                Tensor denom = Ops.add(Ops.sqrt(Ops.div(v.get(i), c2)), eps);
                p.sub_(Ops.div(m.get(i), denom), new Scalar(g.lr() * lrScale / c1));
            }
        }
    }

    /** Multiplies every group's learning rate (warm-up, decay schedules). */
    public void setLrScale(double scale) {
        this.lrScale = scale;
    }

    public void zeroGrad() {
        for (Group g : groups) {
            Tensor grad = g.tensor().grad();
            if (grad.defined()) grad.zero_();
        }
    }

    public long steps() { return step; }

    /** The trained tensors with their names and learning rates, in the order given. */
    public List<Group> groups() { return groups; }

    /** The moment estimates, for checkpoints: m then v per group. */
    public List<Tensor> state() {
        List<Tensor> out = new ArrayList<>(m);
        out.addAll(v);
        return out;
    }

    /** Restores moment estimates and the step count saved by {@link #state()}. */
    public void restore(List<Tensor> state, long steps) {
        if (state.size() != 2 * groups.size()) throw new IllegalArgumentException("optimizer state has " + state.size() + " tensors, expected " + 2 * groups.size());
        try (NoGradGuard ng = new NoGradGuard()) {
            for (int i = 0; i < groups.size(); i++) {
                m.get(i).copy_(state.get(i));
                v.get(i).copy_(state.get(groups.size() + i));
            }
        }
        this.step = steps;
    }
}
