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
 * (betas 0.9/0.999, eps 1e-8) and decoupled weight decay. Updates the leaf tensors in place:
 * <pre>
 *   p <- p (1 - lr wd);  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
 *   p <- p - lr (m / c1) / (sqrt(v / c2) + eps)      with c_i = 1 - b_i^step
 * </pre>
 * in place, one fused op per line as libtorch's {@code torch::optim::AdamW::step} does (no temporaries but the
 * denominator).
 * <p>
 * Why not libtorch's, which the presets offer ({@code org.bytedeco.pytorch.AdamW}): the trainers checkpoint the
 * moments m and v as named tensors beside the parameters in one safetensors file, and the presets give no access
 * to libtorch's optimizer state except through its own archive format, keyed by tensor addresses. Measured with
 * {@code AdamWBench} (src/test, 2 busy cores): the same parameters to 2.4e-7 after 3 steps (float rounding); as
 * fast on large tensors (SD 1.5's 32 K/V matrices, 19M values: 34-39 ms a step, libtorch 36 ms); slower by the
 * Java calls per tensor on many small ones (the world model's 394 tensors: 30-41 ms, libtorch 19 ms; a concept's 17
 * tensors: 1.4 ms, libtorch 0.6 ms), which is nothing beside a concept's step. Pretraining, whose tensors share one
 * learning rate, steps them as one group: their values, gradients and moments each one flat buffer ({@link FlatLayout}).
 */
public final class AdamW {
    /**
     * A trained tensor with its learning rate, and its gradient: the tensor's {@code .grad}, or where {@code gradient}
     * is given, that tensor (a flat buffer of gradients beside a flat buffer of parameters, see {@link FlatLayout}).
     */
    public record Group(String name, Tensor tensor, Tensor gradient, double lr) {
        public Group(String name, Tensor tensor, double lr) {
            this(name, tensor, null, lr);
        }

        public Tensor grad() {
            return gradient != null ? gradient : tensor.grad();
        }
    }

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
            Scalar oneMinusBeta1 = new Scalar(1 - beta1), beta2Scalar = new Scalar(beta2), oneMinusBeta2 = new Scalar(1 - beta2);
            Scalar sqrtC2 = new Scalar(Math.sqrt(c2)), epsScalar = new Scalar(eps);
            for (int i = 0; i < groups.size(); i++) {
                Group g = groups.get(i);
                Tensor p = g.tensor(), grad = g.grad();
                if (!grad.defined()) continue;
                double lr = g.lr() * lrScale;
                p.mul_(new Scalar(1 - lr * weightDecay));                       // decoupled weight decay
                m.get(i).lerp_(grad, oneMinusBeta1);                             // m = b1 m + (1 - b1) g
                v.get(i).mul_(beta2Scalar).addcmul_(grad, grad, oneMinusBeta2);  // v = b2 v + (1 - b2) g^2
                Tensor denom = v.get(i).sqrt().div_(sqrtC2).add_(epsScalar);     // sqrt(v / c2) + eps
                p.addcdiv_(m.get(i), denom, new Scalar(-lr / c1));               // p -= lr (m / c1) / denom
            }
        }
    }

    /** Multiplies every group's learning rate (warm-up, decay schedules). */
    public void setLrScale(double scale) {
        this.lrScale = scale;
    }

    public void zeroGrad() {
        for (Group g : groups) {
            Tensor grad = g.grad();
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
