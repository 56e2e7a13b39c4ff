package dev.perfusion.perfusion;

import dev.perfusion.nn.Linear;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

import java.util.Random;

/** Small random float64 problems for the Perfusion math tests. */
final class TestMath {
    private TestMath() {}

    static Tensor randn(Random r, long... shape) {
        double[] v = new double[Math.toIntExact(Ops.numel(shape))];
        for (int i = 0; i < v.length; i++) v[i] = r.nextGaussian();
        return Ops.fromDoubles(v, shape);
    }

    /** A random symmetric positive definite C = A A^T / d + 0.5 I. */
    static Tensor randomSpd(Random r, int d) {
        Tensor a = randn(r, d, d);
        Tensor eye = torch.eye(d, new TensorOptions(torch.ScalarType.Double));
        return Ops.add(Ops.div(a.matmul(a.t()), d), Ops.mul(eye, 0.5));
    }

    static Tensor inverse(Tensor c) { return torch.linalg_inv(c); }

    /** A bias-free projection D -> out with a random float64 weight. */
    static Linear projection(Random r, int in, int out) {
        Linear l = new Linear(in, out, false);
        l.weight.set(Ops.div(randn(r, out, in), Math.sqrt(in)));
        return l;
    }

    /** Encodings [B, T, D] of random tokens, with token 1 of each prompt a noisy copy of {@code near}. */
    static Tensor encodings(Random r, int b, int t, Tensor near, double amount) {
        long d = Ops.shape(near)[0];
        Tensor e = randn(r, b, t, d);
        Tensor mix = Ops.add(Ops.mul(near, amount), Ops.mul(randn(r, b, d), 0.3));
        return Ops.cat(1, e.narrow(1, 0, 1), mix.unsqueeze(1), e.narrow(1, 2, t - 2));
    }

    static double maxRelDiff(Tensor a, Tensor b) {
        return Ops.maxAbsDiff(a, b) / Math.max(1e-300, Ops.maxAbs(b));
    }

    static double norm(Tensor t) { return Math.sqrt(Ops.item(t.to(torch.ScalarType.Double).mul(t.to(torch.ScalarType.Double)).sum())); }
}
