package dev.perfusion.perfusion;

import dev.perfusion.nn.Linear;
import dev.perfusion.perfusion.ConceptGate.Orthogonalization;
import dev.perfusion.perfusion.GatedRankOneProjection.Role;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static dev.perfusion.perfusion.TestMath.*;
import static org.junit.jupiter.api.Assertions.*;

/** Gradients into E and o*_V (check 6), and how the per-prompt gate is shared and memoised. */
class GatedRankOneProjectionTest {
    private static final int D = 8;
    private static final int OUT = 5;

    @Test
    void gradientsReachingTheEncodingsAndTheValueTargetMatchFiniteDifferences() {
        for (Orthogonalization o : Orthogonalization.values()) {
            for (int n = 1; n <= 2; n++) checkGradients(o, n, new Random(10 + n));
        }
    }

    /** loss = Σ (K(E) ⊙ R_K) + Σ (V(E) ⊙ R_V), differentiated w.r.t. E and every o*_V. */
    private void checkGradients(Orthogonalization o, int concepts, Random r) {
        String what = o + " with " + concepts + " concept(s)";
        try (Scope outer = Scope.open()) {
            Tensor cInv = inverse(randomSpd(r, D));
            List<Concept> list = new ArrayList<>();
            for (int j = 0; j < concepts; j++) list.add(new Concept(randn(r, D), 0.5, 0.2));
            ConceptGate gate = new ConceptGate(cInv, list, o);
            Linear wK = projection(r, D, OUT), wV = projection(r, D, OUT);
            List<Tensor> keyTargets = new ArrayList<>(), valueTargets = new ArrayList<>();
            for (Concept c : list) {
                keyTargets.add(GatedRankOneProjection.lockedKeyTarget(wK, c.iStar()));
                valueTargets.add(GatedRankOneProjection.trainableValueTarget(wV, Ops.add(c.iStar(), randn(r, D))));
            }
            var key = new GatedRankOneProjection(wK, gate, Role.KEY, keyTargets);
            var value = new GatedRankOneProjection(wV, gate, Role.VALUE, valueTargets);
            Tensor e0 = encodings(r, 2, 4, list.get(0).iStar(), 0.6);
            Tensor rK = randn(r, 2, 4, OUT), rV = randn(r, 2, 4, OUT);

            Tensor e = e0.clone().set_requires_grad(true);
            loss(key, value, e, rK, rV).backward();
            assertEquals(1, gate.computations(), what + ": one gate computation for K and V");
            double[] autogradE = Ops.toDoubles(e.grad());

            double[] base = Ops.toDoubles(e0);
            double[] numericE = new double[base.length];
            double h = 1e-5;
            try (Scope noGrad = Scope.inference()) {
                for (int i = 0; i < base.length; i++) {
                    numericE[i] = centralDifference(base, i, h, x -> loss(key, value, Ops.fromDoubles(x, 2, 4, D), rK, rV));
                }
            }
            assertRelativeError(autogradE, numericE, what + ": dL/dE");

            for (int j = 0; j < concepts; j++) {
                Tensor target = valueTargets.get(j);
                double[] autogradO = Ops.toDoubles(target.grad());
                double[] numericO = new double[OUT];
                double[] original = Ops.toDoubles(target);
                try (Scope noGrad = Scope.inference()) {
                    for (int i = 0; i < OUT; i++) {
                        numericO[i] = centralDifference(original, i, h, x -> {
                            target.copy_(Ops.fromDoubles(x, OUT));
                            return loss(key, value, e0, rK, rV);
                        });
                    }
                    target.copy_(Ops.fromDoubles(original, OUT));
                }
                assertRelativeError(autogradO, numericO, what + ": dL/do*_V of concept " + j);
            }
        }
    }

    private static Tensor loss(GatedRankOneProjection key, GatedRankOneProjection value, Tensor e, Tensor rK, Tensor rV) {
        return key.forward(e).mul(rK).sum().add(value.forward(e).mul(rV).sum());
    }

    private static double centralDifference(double[] x, int i, double h, java.util.function.Function<double[], Tensor> f) {
        double[] plus = x.clone(), minus = x.clone();
        plus[i] += h;
        minus[i] -= h;
        return (Ops.item(f.apply(plus)) - Ops.item(f.apply(minus))) / (2 * h);
    }

    private static void assertRelativeError(double[] autograd, double[] numeric, String what) {
        double diff = 0, size = 0;
        for (int i = 0; i < numeric.length; i++) {
            diff += (autograd[i] - numeric[i]) * (autograd[i] - numeric[i]);
            size += numeric[i] * numeric[i];
        }
        double rel = Math.sqrt(diff / size);
        assertTrue(size > 0 && rel < 1e-6, what + ": relative error " + rel);
    }

    // ---- sharing and memoisation --------------------------------------------------------------------------

    @Test
    void oneGateComputationServesEveryLayerAndStepOfAPrompt() {
        Random r = new Random(20);
        Tensor cInv, e, oStar;
        ConceptGate gate;
        List<GatedRankOneProjection> layers = new ArrayList<>();
        try (Scope setup = Scope.inference()) {
            cInv = Scope.keep(inverse(randomSpd(r, D)));
            Concept concept = new Concept(randn(r, D), 0.7, 0.15);
            gate = ConceptGate.single(cInv, concept);
            for (int l = 0; l < 16; l++) {
                Linear w = projection(r, D, OUT + l);
                layers.add(new GatedRankOneProjection(w, gate, Role.KEY, List.of(GatedRankOneProjection.lockedKeyTarget(w, concept.iStar()))));
                layers.add(new GatedRankOneProjection(w, gate, Role.VALUE, List.of(randn(r, OUT + l))));
            }
            e = Scope.keep(encodings(r, 2, 6, concept.iStar(), 1.0));
        }
        List<Tensor> first = new ArrayList<>();
        for (int step = 0; step < 3; step++) {
            try (Scope denoisingStep = Scope.inference()) {
                for (int l = 0; l < layers.size(); l++) {
                    Tensor out = layers.get(l).forward(new Tensor(e));          // another wrapper of the same tensor
                    if (step == 0) first.add(Scope.keep(out));
                    else assertEquals(0.0, Ops.maxAbsDiff(out, first.get(l)), "memoised output of layer " + l);
                }
            }
        }
        assertEquals(1, gate.computations(), "gate computed once for 32 projections x 3 steps");

        try (Scope s = Scope.inference()) {
            Tensor fresh = gate.compute(e).eOrth();
            GatedEncoding cached = gate.prepare(e);
            assertEquals(0.0, Ops.maxAbsDiff(cached.eOrth(), fresh), "cached state survives the scope it was made in");
            Tensor other = e.clone();
            layers.get(0).forward(other);
            assertEquals(3, gate.computations(), "a different encodings tensor gets its own gate");
            other.mul_(new org.bytedeco.pytorch.Scalar(2.0));
            layers.get(0).forward(other);
            assertEquals(4, gate.computations(), "an in-place write to E invalidates its gate");
            gate.setGate(0.5, 0.15);
            Tensor changed = layers.get(1).forward(e);
            assertEquals(5, gate.computations(), "changing beta recomputes");
            assertTrue(Ops.maxAbsDiff(changed, first.get(1)) > 1e-6);
        }
    }

    @Test
    void memoisedValueOutputFollowsTrainedTargets() {
        try (Scope s = Scope.inference()) {
            Random r = new Random(21);
            Tensor cInv = inverse(randomSpd(r, D));
            Concept concept = new Concept(randn(r, D), 0.7, 0.15);
            ConceptGate gate = ConceptGate.single(cInv, concept);
            Linear w = projection(r, D, OUT);
            Tensor oV = GatedRankOneProjection.trainableValueTarget(w, concept.iStar());
            var value = new GatedRankOneProjection(w, gate, Role.VALUE, List.of(oV));
            Tensor e = encodings(r, 1, 4, concept.iStar(), 1.0);
            Tensor before = value.forward(e);
            oV.add_(Ops.ones(OUT));                                              // an optimiser step
            Tensor after = value.forward(e);
            assertTrue(Ops.maxAbsDiff(after, before) > 1e-3, "memo invalidated by the target update");
            assertEquals(1, gate.computations(), "the gate itself is still shared");
        }
    }

    @Test
    void globalKeyLockingFeedsKeysTheSupercategoryPrompt() {
        try (Scope s = Scope.inference()) {
            Random r = new Random(22);
            Tensor cInv = inverse(randomSpd(r, D));
            Concept concept = new Concept(randn(r, D), 0.5, 0.15);
            Linear wK = projection(r, D, OUT), wV = projection(r, D, OUT);
            Tensor oK = GatedRankOneProjection.lockedKeyTarget(wK, concept.iStar());
            Tensor oV = randn(r, OUT);
            Tensor e = encodings(r, 2, 6, concept.iStar(), 1.0);
            Tensor eSuper = encodings(r, 2, 6, concept.iStar(), 0.8);

            ConceptGate locked = ConceptGate.single(cInv, concept);
            var key = new GatedRankOneProjection(wK, locked, Role.KEY, List.of(oK));
            var value = new GatedRankOneProjection(wV, locked, Role.VALUE, List.of(oV));
            locked.lockKeys(e, eSuper);

            ConceptGate plain = ConceptGate.single(cInv, concept);
            var plainKey = new GatedRankOneProjection(wK, plain, Role.KEY, List.of(oK));
            var plainValue = new GatedRankOneProjection(wV, plain, Role.VALUE, List.of(oV));

            assertEquals(0.0, Ops.maxAbsDiff(key.forward(e), plainKey.forward(eSuper)), "K reads the supercategory prompt");
            assertEquals(0.0, Ops.maxAbsDiff(value.forward(e), plainValue.forward(e)), "V reads the prompt");
            assertTrue(Ops.maxAbsDiff(key.forward(e), plainKey.forward(e)) > 1e-6);
        }
    }

    /**
     * The key lock is asked once per picture: with more pictures side by side than the cache's entries, an evicted
     * lock left the rest of a picture's steps with unlocked keys. It now holds until its picture is drawn.
     */
    @Test
    void aKeyLockHoldsWhileOtherPromptsComeAndGoesWhenItsPictureIsDrawn() {
        try (Scope s = Scope.inference()) {
            Random r = new Random(24);
            Concept concept = new Concept(randn(r, D), 0.5, 0.15);
            ConceptGate gate = ConceptGate.single(inverse(randomSpd(r, D)), concept);
            // twelve pictures side by side, more than the cache holds, each locked, each step reading its key encodings' gate
            List<Tensor> prompts = new java.util.ArrayList<>(), keys = new java.util.ArrayList<>();
            for (int p = 0; p < 12; p++) {
                prompts.add(encodings(r, 2, 6, concept.iStar(), 1.0));
                keys.add(encodings(r, 2, 6, concept.iStar(), 0.8));
                gate.lockKeys(prompts.get(p), keys.get(p));
                gate.prepare(prompts.get(p));
                gate.prepare(keys.get(p));
            }
            for (int other = 0; other < 20; other++) gate.prepare(encodings(r, 2, 6, concept.iStar(), 1.0));
            long computed = gate.computations();
            for (int p = 0; p < 12; p++) {
                assertEquals(keys.get(p).unsafeGetTensorImpl().address(), gate.keyInput(prompts.get(p)).unsafeGetTensorImpl().address(),
                        "picture " + p + "'s lock outlived 20 other prompts");
                gate.prepare(prompts.get(p));
                gate.prepare(keys.get(p));
            }
            assertEquals(computed, gate.computations(), "every locked picture's gate states are still cached: none computed again");
            assertEquals(12 * 2 + 8, gate.cachedPrompts(), "the locked pictures' entries beside the 8 the cache holds");
            for (Tensor prompt : prompts) gate.forget(prompt);
            assertEquals(8, gate.cachedPrompts(), "forgotten once drawn, with their key encodings' entries");
            assertEquals(prompts.get(0).unsafeGetTensorImpl().address(), gate.keyInput(prompts.get(0)).unsafeGetTensorImpl().address(), "unlocked");
        }
    }

    @Test
    void trainingStepsDoNotAccumulateGraphsInTheCache() {
        Random r = new Random(23);
        try (Scope s = Scope.open()) {
            Tensor cInv = inverse(randomSpd(r, D));
            Concept concept = new Concept(randn(r, D), 0.75, 0.1);
            ConceptGate gate = ConceptGate.single(cInv, concept);
            Linear w = projection(r, D, OUT);
            Tensor oV = GatedRankOneProjection.trainableValueTarget(w, concept.iStar());
            var value = new GatedRankOneProjection(w, gate, Role.VALUE, List.of(oV));
            for (int step = 0; step < 3; step++) {
                Tensor e = encodings(r, 2, 4, concept.iStar(), 1.0).set_requires_grad(true);
                value.forward(e).sum().backward();
                value.forward(e);
                assertEquals(step + 1, gate.computations());
                assertEquals(1, gate.cachedPrompts(), "older training steps' graphs were released");
                assertTrue(Ops.maxAbs(e.grad()) > 0, "gradient reaches E");
            }
            assertTrue(Ops.maxAbs(oV.grad()) > 0, "gradient reaches o*_V");

            Tensor e = encodings(r, 2, 4, concept.iStar(), 1.0).set_requires_grad(true);
            try (Scope logging = Scope.inference()) {
                gate.prepare(e);                                                 // e.g. logging s without a graph
            }
            value.forward(e).sum().backward();
            assertTrue(e.grad().defined() && Ops.maxAbs(e.grad()) > 0, "a graph-less cached gate is recomputed for training");
        }
    }
}
