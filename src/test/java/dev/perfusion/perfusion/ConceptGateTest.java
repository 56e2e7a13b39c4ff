package dev.perfusion.perfusion;

import dev.perfusion.nn.Linear;
import dev.perfusion.perfusion.ConceptGate.Orthogonalization;
import dev.perfusion.perfusion.GatedRankOneProjection.Role;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static dev.perfusion.perfusion.TestMath.*;
import static org.junit.jupiter.api.Assertions.*;

/** The method notes' section 9 checks 1-5, in float64 with small random problems. */
class ConceptGateTest {
    private static final int D = 12;
    private static final int OUT = 7;

    /**
     * A closed gate frees its native memory at once (C^-1 and its factor are megabytes at SD's width, per server job,
     * left to a garbage collector that the small Java objects holding them seldom wake) and refuses any later use.
     */
    @Test
    void aClosedGateLeavesNothingBehindAndRefusesUse() {
        Tensor cInv, e;
        List<Concept> concepts;
        Random r = new Random(6);
        try (Scope s = Scope.inference()) {
            cInv = Scope.keep(inverse(randomSpd(r, D)));
            concepts = List.of(new Concept(Scope.keep(randn(r, D)), 0.7, 0.15), new Concept(Scope.keep(randn(r, D)), 0.6, 0.1));
            e = Scope.keep(randn(r, 2, 3, D));
        }
        ConceptGate first = new ConceptGate(cInv, concepts, Orthogonalization.EXACT);
        first.close();
        long before = org.bytedeco.javacpp.Pointer.totalCount();
        for (int i = 0; i < 10; i++) {
            ConceptGate gate = new ConceptGate(cInv, concepts, Orthogonalization.EXACT);
            try (Scope s = Scope.inference()) {
                gate.prepare(e);
                gate.setGate(0.8, 0.1);
                gate.prepare(e);
            }
            gate.close();
            gate.close();
            IllegalStateException closed = assertThrows(IllegalStateException.class, () -> gate.compute(e));
            assertEquals("the concept gate is closed: its concepts were taken out of the model", closed.getMessage());
        }
        long left = org.bytedeco.javacpp.Pointer.totalCount() - before;
        assertTrue(left < 10, "native objects left by 10 gates: " + left);
    }

    /** A refused concept (i* zero or NaN) left the gate pointing at constants already freed; it now leaves it as it was. */
    @Test
    void aRefusedConceptLeavesTheGateAsItWas() {
        try (Scope s = Scope.inference()) {
            Random r = new Random(5);
            Tensor cInv = inverse(randomSpd(r, D));
            ConceptGate gate = new ConceptGate(cInv, List.of(new Concept(randn(r, D), 0.7, 0.15), new Concept(randn(r, D), 0.6, 0.1)), Orthogonalization.EXACT);
            Tensor e = randn(r, 2, 3, D);
            float[] before = Ops.toFloats(gate.compute(e).eOrth());
            Tensor zero = torch.zeros(new long[] {D}, new TensorOptions(torch.ScalarType.Double));
            IllegalArgumentException refused = assertThrows(IllegalArgumentException.class, () -> gate.setConcept(1, new Concept(zero, 0.7, 0.15)));
            assertTrue(refused.getMessage().contains("i* is zero"), refused.getMessage());
            assertThrows(ArithmeticException.class, () -> gate.trackIStar(0, zero.add(new org.bytedeco.pytorch.Scalar(Double.NaN))));
            assertArrayEquals(before, Ops.toFloats(gate.compute(e).eOrth()), "the same gate after both refusals");
            assertEquals(0.6, gate.concept(1).beta());
            assertTrue(Ops.allFinite(gate.concept(0).iStar()), "the refused i* was not copied in");
        }
    }

    @Test
    void linearGateIsTheRomeClosedForm() {
        try (Scope s = Scope.inference()) {
            Random r = new Random(1);
            Tensor c = randomSpd(r, D), cInv = inverse(c);
            Tensor iStar = randn(r, D), oStar = randn(r, OUT);
            Linear w = projection(r, D, OUT);
            ConceptGate gate = ConceptGate.single(cInv, new Concept(iStar, 0.7, 0.15));
            gate.setGating(ConceptGate.Gating.LINEAR_ROME);
            var edited = new GatedRankOneProjection(w, gate, Role.VALUE, List.of(oStar));

            // W' = W + Λ (C^-1 i*)^T,  Λ = (o* - W i*) / ((C^-1 i*)^T i*)
            Tensor a = cInv.matmul(iStar);
            Tensor lambda = Ops.div(oStar.sub(w.weight().matmul(iStar)), Ops.item(a.dot(iStar)));
            Tensor wPrime = w.weight().add(lambda.outer(a));

            Tensor e = encodings(r, 2, 6, iStar, 0.9);
            double diff = maxRelDiff(edited.forward(e), e.matmul(wPrime.t()));
            assertTrue(diff < 1e-12, "ROME closed form, max rel diff " + diff);
            assertTrue(maxRelDiff(wPrime.matmul(iStar), oStar) < 1e-12, "W' i* = o*");
        }
    }

    /** Micro-batches side by side: each prompt batch reads the i* bound to it, the others the gate's own. */
    @Test
    void anIStarBoundToAPromptBatchIsReadForItAlone() {
        try (Scope s = Scope.inference()) {
            Random r = new Random(10);
            Tensor cInv = inverse(randomSpd(r, D));
            Tensor own = randn(r, D), bound = randn(r, D);
            Linear w = projection(r, D, OUT);
            Tensor oStar = randn(r, OUT);
            ConceptGate gate = ConceptGate.single(cInv, new Concept(own, 0.75, 0.1));
            var edited = new GatedRankOneProjection(w, gate, Role.VALUE, List.of(oStar));
            Tensor e = encodings(r, 2, 5, bound, 0.8), other = encodings(r, 2, 5, own, 0.8);
            gate.trackIStarFor(e, 0, List.of(bound));
            Tensor expectedBound = output(cInv, List.of(new Concept(bound, 0.75, 0.1)), Orthogonalization.APPROXIMATE, w, List.of(oStar), e);
            Tensor expectedOwn = output(cInv, List.of(new Concept(own, 0.75, 0.1)), Orthogonalization.APPROXIMATE, w, List.of(oStar), other);
            assertEquals(0.0, Ops.maxAbsDiff(edited.forward(e), expectedBound), 1e-12, "E reads its bound i*");
            assertEquals(0.0, Ops.maxAbsDiff(edited.forward(other), expectedOwn), 1e-12, "another E reads the gate's own");
            assertEquals(0.0, Ops.maxAbsDiff(gate.concept(0).iStar(), own), "the gate's own i* is unchanged");
            gate.trackIStar(0, own);  // a step's end: the bindings go with the cache
            assertEquals(0.0, Ops.maxAbsDiff(edited.forward(e), output(cInv, List.of(new Concept(own, 0.75, 0.1)),
                    Orthogonalization.APPROXIMATE, w, List.of(oStar), e)), 1e-12, "after the step E reads the gate's i*");
        }
    }

    /** Micro-batches fused into one batch: each block of rows reads the i* bound to it, as it would alone. */
    @Test
    void eachBlockOfAFusedPromptBatchReadsItsOwnIStar() {
        try (Scope s = Scope.inference()) {
            Random r = new Random(12);
            Tensor cInv = inverse(randomSpd(r, D));
            Tensor own = randn(r, D), first = randn(r, D), second = randn(r, D);
            Linear w = projection(r, D, OUT);
            Tensor oStar = randn(r, OUT);
            ConceptGate gate = ConceptGate.single(cInv, new Concept(own, 0.75, 0.1));
            var edited = new GatedRankOneProjection(w, gate, Role.VALUE, List.of(oStar));
            Tensor a = encodings(r, 2, 5, first, 0.8), b = encodings(r, 2, 5, second, 0.8);
            Tensor fused = Ops.cat(List.of(a, b), 0);
            gate.trackIStarFor(fused, 0, List.of(first, second));
            Tensor expected = Ops.cat(List.of(
                    output(cInv, List.of(new Concept(first, 0.75, 0.1)), Orthogonalization.APPROXIMATE, w, List.of(oStar), a),
                    output(cInv, List.of(new Concept(second, 0.75, 0.1)), Orthogonalization.APPROXIMATE, w, List.of(oStar), b)), 0);
            assertEquals(0.0, Ops.maxAbsDiff(edited.forward(fused), expected), 1e-12, "each block reads its own i*");
            assertEquals(1, gate.computations(), "one gate state for the fused batch");
            assertThrows(IllegalArgumentException.class, () -> gate.trackIStarFor(fused, 0, List.of(first, second, own)),
                    "4 rows do not split into 3 blocks");
        }
    }

    /** More micro-batches side by side than the cache's usual size: none loses the i* bound to it. */
    @Test
    void everyBoundPromptBatchStaysWhileItsStepRuns() {
        try (Scope s = Scope.open()) {
            Random r = new Random(11);
            Tensor cInv = inverse(randomSpd(r, D));
            Tensor own = randn(r, D);
            ConceptGate gate = ConceptGate.single(cInv, new Concept(own, 0.75, 0.1));
            int parts = 10;
            gate.holdGraphs(parts);
            List<Tensor> es = new ArrayList<>(), bound = new ArrayList<>();
            for (int k = 0; k < parts; k++) {
                bound.add(randn(r, D));
                es.add(encodings(r, 2, 5, bound.get(k), 0.8).set_requires_grad(true));
                gate.trackIStarFor(es.get(k), 0, List.of(bound.get(k)));
            }
            assertEquals(parts, gate.cachedPrompts(), "all ten bound prompt batches are held");
            for (int k = 0; k < parts; k++) {
                ConceptGate alone = ConceptGate.single(cInv, new Concept(bound.get(k), 0.75, 0.1));
                assertEquals(0.0, Ops.maxAbsDiff(gate.prepare(es.get(k)).s(), alone.compute(es.get(k)).s()), 1e-12, "part " + k + " reads its own i*");
            }
        }
    }

    @Test
    void trackingIStarGivesWhatANewConceptWouldAndKeepsTheCallersTensor() {
        try (Scope s = Scope.inference()) {
            Random r = new Random(9);
            Tensor cInv = inverse(randomSpd(r, D));
            Tensor first = randn(r, D), moved = randn(r, D), firstBefore = first.clone();
            ConceptGate tracked = ConceptGate.single(cInv, new Concept(first, 0.75, 0.1));
            ConceptGate fresh = ConceptGate.single(cInv, new Concept(moved, 0.75, 0.1));
            Tensor heldBefore = tracked.concept(0).iStar();
            tracked.trackIStar(0, moved.to(torch.ScalarType.Float));
            Tensor e = encodings(r, 2, 5, moved, 0.8);
            assertEquals(0.0, Ops.maxAbsDiff(tracked.compute(e).s(), fresh.compute(e).s()), 1e-6, "s from the moved i*");
            assertEquals(0.0, Ops.maxAbsDiff(first, firstBefore), "the caller's i* is untouched");
            assertSame(heldBefore, tracked.concept(0).iStar(), "no new tensor per step");
            assertThrows(IllegalArgumentException.class, () -> tracked.trackIStar(0, randn(r, D + 1)));
        }
    }

    @Test
    void conceptInputHasUnitSAndGivesTheGatedTarget() {
        try (Scope s = Scope.inference()) {
            Random r = new Random(2);
            Tensor cInv = inverse(randomSpd(r, D));
            Tensor iStar = randn(r, D), oStar = randn(r, OUT);
            double beta = 0.7, tau = 0.15;
            ConceptGate gate = ConceptGate.single(cInv, new Concept(iStar, beta, tau));
            var edited = new GatedRankOneProjection(projection(r, D, OUT), gate, Role.VALUE, List.of(oStar));

            Tensor e = Ops.cat(1, randn(r, 1, 2, D), iStar.reshape(1, 1, D), randn(r, 1, 3, D));
            GatedEncoding g = gate.prepare(e);
            assertEquals(1.0, Ops.item(g.s().select(1, 2).squeeze()), 1e-13, "s(i*) = 1");
            Tensor h = edited.forward(e).select(1, 2).squeeze();
            double expected = 1 / (1 + Math.exp(-(1 - beta) / tau));
            assertTrue(maxRelDiff(h, Ops.mul(oStar, expected)) < 1e-13, "h(i*) = sigmoid((1-beta)/tau) o*");
        }
    }

    @Test
    void sAndEOrthDoNotDependOnTheScaleOfC() {
        try (Scope s = Scope.inference()) {
            Random r = new Random(3);
            Tensor cInv = inverse(randomSpd(r, D));
            Tensor cInvOf77C = Ops.div(cInv, 77);
            List<Concept> concepts = concepts(r, 3);
            Tensor e = encodings(r, 2, 5, concepts.get(0).iStar(), 1.0);
            for (Orthogonalization o : Orthogonalization.values()) {
                GatedEncoding a = new ConceptGate(cInv, concepts, o).compute(e);
                GatedEncoding b = new ConceptGate(cInvOf77C, concepts, o).compute(e);
                assertTrue(maxRelDiff(b.s(), a.s()) < 1e-12, o + ": s under C -> 77 C");
                assertTrue(maxRelDiff(b.eOrth(), a.eOrth()) < 1e-12, o + ": e⊥ under C -> 77 C");
                assertTrue(maxRelDiff(b.gate(), a.gate()) < 1e-12, o + ": gate under C -> 77 C");
            }
        }
    }

    @Test
    void exactWithOneConceptIsTheSingleConceptEdit() {
        try (Scope s = Scope.inference()) {
            Random r = new Random(4);
            Tensor cInv = inverse(randomSpd(r, D));
            Concept concept = new Concept(randn(r, D), 0.6, 0.2);
            Linear w = projection(r, D, OUT);
            Tensor oStar = randn(r, OUT);
            Tensor e = encodings(r, 3, 5, concept.iStar(), 0.8);
            Tensor single = new GatedRankOneProjection(w, ConceptGate.single(cInv, concept), Role.VALUE, List.of(oStar)).forward(e);
            ConceptGate exactGate = new ConceptGate(cInv, List.of(concept), Orthogonalization.EXACT);
            Tensor exact = new GatedRankOneProjection(w, exactGate, Role.VALUE, List.of(oStar)).forward(e);
            assertTrue(maxRelDiff(exact, single) < 1e-12, "exact N=1 vs single: " + maxRelDiff(exact, single));
        }
    }

    @Test
    void exactBasisIsCInvOrthonormalAndEOrthIsCInvOrthogonalToEveryConcept() {
        try (Scope s = Scope.inference()) {
            Random r = new Random(5);
            Tensor cInv = inverse(randomSpd(r, D));
            List<Concept> concepts = concepts(r, 3);
            ConceptGate gate = new ConceptGate(cInv, concepts, Orthogonalization.EXACT);
            Tensor u = gate.orthonormalBasis();                                   // [3, D]
            Tensor gram = u.matmul(cInv).matmul(u.t());
            assertTrue(Ops.maxAbsDiff(gram, torch.eye(3, new TensorOptions(torch.ScalarType.Double))) < 1e-12,
                    "u^T C^-1 u = I");

            Tensor e = encodings(r, 2, 6, concepts.get(1).iStar(), 1.0);
            Tensor eOrth = gate.compute(e).eOrth();
            for (Concept c : concepts) {
                Tensor inner = eOrth.matmul(cInv.matmul(c.iStar()));              // e⊥^T C^-1 i*_j
                double scale = norm(e) * norm(cInv.matmul(c.iStar()));
                assertTrue(Ops.maxAbs(inner) / scale < 1e-13, "e⊥^T C^-1 i*_j = 0: " + Ops.maxAbs(inner));
            }
        }
    }

    @Test
    void approximateEqualsExactForCInvOrthogonalConceptsOnly() {
        try (Scope s = Scope.inference()) {
            Random r = new Random(6);
            Tensor cInv = inverse(randomSpd(r, D));
            // Gram-Schmidt in the C^-1 metric, then unequal lengths
            List<Tensor> orthogonal = new ArrayList<>();
            for (int j = 0; j < 3; j++) {
                Tensor v = randn(r, D);
                for (Tensor q : orthogonal) {
                    double coef = Ops.item(v.dot(cInv.matmul(q))) / Ops.item(q.dot(cInv.matmul(q)));
                    v = Ops.addScaled(v, q, -coef);
                }
                orthogonal.add(Ops.mul(v, 0.5 + j));
            }
            List<Tensor> targets = List.of(randn(r, OUT), randn(r, OUT), randn(r, OUT));
            Linear w = projection(r, D, OUT);
            List<Concept> concepts = new ArrayList<>();
            for (Tensor i : orthogonal) concepts.add(new Concept(i, 0.5, 0.2));
            Tensor e = encodings(r, 2, 6, orthogonal.get(2), 0.9);
            double diff = maxRelDiff(output(cInv, concepts, Orthogonalization.APPROXIMATE, w, targets, e),
                    output(cInv, concepts, Orthogonalization.EXACT, w, targets, e));
            assertTrue(diff < 1e-12, "approximate vs exact, C^-1-orthogonal i*: " + diff);

            List<Concept> generic = concepts(r, 3);
            double apart = maxRelDiff(output(cInv, generic, Orthogonalization.APPROXIMATE, w, targets, e),
                    output(cInv, generic, Orthogonalization.EXACT, w, targets, e));
            assertTrue(apart > 1e-6, "the two forms differ for generic i*: " + apart);
        }
    }

    @Test
    void dependentConceptsAreRejectedByTheExactForm() {
        try (Scope s = Scope.inference()) {
            Random r = new Random(7);
            Tensor cInv = inverse(randomSpd(r, D));
            Tensor i = randn(r, D);
            List<Concept> parallel = List.of(new Concept(i, 0.5, 0.1), new Concept(Ops.mul(i, 2), 0.5, 0.1));
            var e = assertThrows(IllegalArgumentException.class,
                    () -> new ConceptGate(cInv, parallel, Orthogonalization.EXACT));
            assertTrue(e.getMessage().contains("concept 1"), e.getMessage());
        }
    }

    @Test
    void float32EncodingsMatchTheFloat64Result() {
        try (Scope s = Scope.inference()) {
            Random r = new Random(8);
            Tensor cInv = inverse(randomSpd(r, D));
            List<Concept> concepts = concepts(r, 2);
            Tensor e = encodings(r, 2, 5, concepts.get(0).iStar(), 1.0);
            ConceptGate gate = new ConceptGate(Ops.toFloat32(cInv), concepts, Orthogonalization.EXACT);
            GatedEncoding f = gate.compute(Ops.toFloat32(e));
            GatedEncoding d = gate.compute(e);
            assertEquals(torch.ScalarType.Float, f.eOrth().scalar_type().intern());
            assertTrue(maxRelDiff(f.eOrth(), d.eOrth()) < 1e-5);
            assertTrue(Ops.maxAbsDiff(f.gate(), d.gate()) < 1e-5);
        }
    }

    static List<Concept> concepts(Random r, int n) {
        List<Concept> out = new ArrayList<>();
        for (int j = 0; j < n; j++) out.add(new Concept(randn(r, D), 0.5 + 0.1 * j, 0.15 + 0.05 * j));
        return out;
    }

    private static Tensor output(Tensor cInv, List<Concept> concepts, Orthogonalization o, Linear w, List<Tensor> targets, Tensor e) {
        return new GatedRankOneProjection(w, new ConceptGate(cInv, concepts, o), Role.VALUE, targets).forward(e);
    }
}
