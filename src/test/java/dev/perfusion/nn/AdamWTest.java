package dev.perfusion.nn;

import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.ScopePerTest;
import org.bytedeco.pytorch.AdamWOptions;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** AdamW against the update worked out by hand in double precision, against libtorch's, and through a checkpoint. */
class AdamWTest {
    private static final double B1 = 0.9, B2 = 0.999, EPS = 1e-8;

    @RegisterExtension final ScopePerTest scope = ScopePerTest.training();

    /** A leaf tensor whose gradient is {@code grad}: the gradient of sum(p * grad). */
    private static Tensor leaf(float[] value, float[] grad) {
        Tensor p = Ops.fromFloats(value, value.length).set_requires_grad(true);
        setGrad(p, grad);
        return p;
    }

    private static void setGrad(Tensor p, float[] grad) {
        if (p.grad().defined()) p.grad().zero_();
        Ops.sum(Ops.mul(p, Ops.fromFloats(grad, grad.length)), 0, false).backward();
    }

    /** The AdamW recurrence for one value, step by step, in double. */
    private static final class Reference {
        double p, m, v;
        int t;

        Reference(double p) { this.p = p; }

        void step(double g, double lr, double wd) {
            t++;
            p *= 1 - lr * wd;
            m = B1 * m + (1 - B1) * g;
            v = B2 * v + (1 - B2) * g * g;
            double mHat = m / (1 - Math.pow(B1, t)), vHat = v / (1 - Math.pow(B2, t));
            p -= lr * mHat / (Math.sqrt(vHat) + EPS);
        }
    }

    @Test
    void threeStepsMatchTheHandComputedUpdateWithWeightDecayAndBiasCorrection() {
        float[] start = {1.0f, -2.0f, 0.5f, 3.0f};
        float[][] grads = {{0.1f, -0.3f, 2.0f, 0f}, {0.2f, 0.1f, -1.0f, 1e-3f}, {-0.5f, 0.4f, 0.0f, 5.0f}};
        double lr = 0.05, wd = 0.1;
        Tensor p = leaf(start, grads[0]);
        AdamW adam = new AdamW(List.of(new AdamW.Group("p", p, lr)), wd);
        Reference[] ref = new Reference[start.length];
        for (int i = 0; i < start.length; i++) ref[i] = new Reference(start[i]);
        for (int step = 0; step < grads.length; step++) {
            if (step > 0) setGrad(p, grads[step]);
            adam.step();
            float[] got = Ops.toFloats(p);
            for (int i = 0; i < start.length; i++) {
                ref[i].step(grads[step][i], lr, wd);
                assertEquals(ref[i].p, got[i], 1e-6, "step " + (step + 1) + " value " + i);
            }
        }
        assertEquals(3, adam.steps());
    }

    @Test
    void theFirstStepMovesByTheLearningRateAgainstTheGradientsSign() {
        // at step 1, m-hat = g and v-hat = g^2: p <- p (1 - lr wd) - lr sign(g), and a zero gradient moves nothing
        float[] start = {1.0f, -2.0f, 0.5f};
        Tensor p = leaf(start, new float[] {0.1f, -30f, 0f});
        new AdamW(List.of(new AdamW.Group("p", p, 0.05)), 0.1).step();
        assertArrayEquals(new float[] {1.0f * 0.995f - 0.05f, -2.0f * 0.995f + 0.05f, 0.5f * 0.995f}, Ops.toFloats(p), 1e-6f);
    }

    @Test
    void eachGroupHasItsLearningRateAndTheScaleMultipliesThemAll() {
        Tensor a = leaf(new float[] {1}, new float[] {1}), b = leaf(new float[] {1}, new float[] {1});
        AdamW adam = new AdamW(List.of(new AdamW.Group("a", a, 0.1), new AdamW.Group("b", b, 0.01)), 0);
        adam.setLrScale(0.5);
        adam.step();
        // step 1 without decay: p -= lr * scale * g / (|g| + eps')
        assertEquals(1 - 0.05, Ops.toFloats(a)[0], 1e-6);
        assertEquals(1 - 0.005, Ops.toFloats(b)[0], 1e-6);
        assertEquals(List.of("a", "b"), adam.groups().stream().map(AdamW.Group::name).toList());
    }

    @Test
    void aTensorWithoutGradientIsLeftAloneAndZeroGradClearsGradients() {
        Tensor trained = leaf(new float[] {1, 2}, new float[] {1, 1});
        Tensor idle = Ops.fromFloats(new float[] {3, 4}, 2).set_requires_grad(true);
        AdamW adam = new AdamW(List.of(new AdamW.Group("trained", trained, 0.1), new AdamW.Group("idle", idle, 0.1)), 0.5);
        adam.step();
        assertArrayEquals(new float[] {3, 4}, Ops.toFloats(idle), "no gradient: not even weight decay");
        assertNotEquals(1f, Ops.toFloats(trained)[0]);
        adam.zeroGrad();
        assertArrayEquals(new float[] {0, 0}, Ops.toFloats(trained.grad()));
        assertFalse(idle.grad().defined());
    }

    /** A flat buffer of parameters steps with a buffer of gradients beside it, which zeroGrad zeroes in place. */
    @Test
    void aGroupGivenItsGradientStepsAsOneThatReadsItsTensorsGrad() {
        float[] start = {1.0f, -2.0f, 0.5f}, grad = {0.1f, -0.3f, 2.0f};
        Tensor viaGrad = leaf(start, grad);
        Tensor flat = Ops.fromFloats(start, 3), gradient = Ops.fromFloats(grad, 3);
        AdamW usual = new AdamW(List.of(new AdamW.Group("p", viaGrad, 0.05)), 0.1);
        AdamW given = new AdamW(List.of(new AdamW.Group("flat", flat, gradient, 0.05)), 0.1);
        for (int step = 0; step < 2; step++) {
            usual.step();
            given.step();
        }
        assertNotEquals(start[2], Ops.toFloats(flat)[2]);
        assertArrayEquals(Ops.toFloats(viaGrad), Ops.toFloats(flat), "bit for bit");
        given.zeroGrad();
        assertArrayEquals(new float[] {0, 0, 0}, Ops.toFloats(gradient));
    }

    @Test
    void aRestoredStateContinuesExactlyAsAnUninterruptedRun() {
        float[] start = {0.3f, -1.2f, 2.0f};
        float[][] grads = {{1, -1, 0.5f}, {0.2f, 0.3f, -2}, {-1, 0.1f, 0.1f}, {0.4f, -0.4f, 1}};
        Tensor straight = leaf(start, grads[0]);
        AdamW uninterrupted = new AdamW(List.of(new AdamW.Group("p", straight, 0.01)), 0.01);
        for (int s = 0; s < grads.length; s++) {
            if (s > 0) setGrad(straight, grads[s]);
            uninterrupted.step();
        }

        Tensor first = leaf(start, grads[0]);
        AdamW before = new AdamW(List.of(new AdamW.Group("p", first, 0.01)), 0.01);
        before.step();
        setGrad(first, grads[1]);
        before.step();
        List<Tensor> saved = new ArrayList<>();
        for (Tensor t : before.state()) saved.add(t.clone());
        assertEquals(2, saved.size(), "m then v");

        Tensor resumed = leaf(Ops.toFloats(first), grads[2]);
        AdamW after = new AdamW(List.of(new AdamW.Group("p", resumed, 0.01)), 0.01);
        after.restore(saved, before.steps());
        after.step();
        setGrad(resumed, grads[3]);
        after.step();
        assertEquals(4, after.steps());
        assertArrayEquals(Ops.toFloats(straight), Ops.toFloats(resumed), "bit for bit");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> after.restore(saved.subList(0, 1), 2));
        assertTrue(e.getMessage().contains("expected 2"), e.getMessage());
    }

    @Test
    void agreesWithLibtorchsAdamW() {
        torch.manual_seed(3);
        List<long[]> shapes = List.of(new long[] {7}, new long[] {16, 9}, new long[] {3, 4, 5});
        List<Tensor> ours = new ArrayList<>(), theirs = new ArrayList<>();
        List<AdamW.Group> groups = new ArrayList<>();
        TensorVector libtorchParams = new TensorVector();
        for (long[] s : shapes) {
            Tensor start = torch.randn(s);
            Tensor a = start.clone().set_requires_grad(true), b = start.clone().set_requires_grad(true);
            ours.add(a);
            theirs.add(b);
            groups.add(new AdamW.Group("p" + ours.size(), a, 0.02));
            libtorchParams.push_back(b);
        }
        AdamW adam = new AdamW(groups, 0.05);
        AdamWOptions options = new AdamWOptions(0.02);
        options.weight_decay().put(0.05);
        org.bytedeco.pytorch.AdamW reference = new org.bytedeco.pytorch.AdamW(libtorchParams, options);
        for (int step = 0; step < 3; step++) {
            for (int i = 0; i < shapes.size(); i++) {
                Tensor weights = torch.randn(shapes.get(i));
                for (Tensor p : List.of(ours.get(i), theirs.get(i))) {
                    if (p.grad().defined()) p.grad().zero_();
                    p.mul(weights).sum().backward();
                }
            }
            adam.step();
            try (NoGradGuard ng = new NoGradGuard()) {
                reference.step();
            }
            for (int i = 0; i < shapes.size(); i++) {
                double diff = Ops.maxAbsDiff(ours.get(i).detach(), theirs.get(i).detach());
                assertTrue(diff < 1e-6, "step " + (step + 1) + " tensor " + i + ": " + diff);
            }
        }
    }
}
