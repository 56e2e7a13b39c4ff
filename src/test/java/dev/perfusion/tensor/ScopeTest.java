package dev.perfusion.tensor;

import org.bytedeco.pytorch.GradMode;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** What a scope frees, what it keeps, and whether autograd records inside it. */
class ScopeTest {
    @Test
    void tensorsMadeInAScopeAreFreedWhenItClosesUnlessKept() {
        Tensor temporary, kept;
        try (Scope s = Scope.inference()) {
            temporary = Ops.fromFloats(new float[] {1, 2}, 2);
            kept = Scope.keep(Ops.mul(temporary, 3));
            assertFalse(temporary.isNull());
        }
        assertTrue(temporary.isNull(), "freed at close");
        assertFalse(kept.isNull());
        FreedMemory.poison(0);
        assertArrayEquals(new float[] {3, 6}, Ops.toFloats(kept), "a kept tensor's memory is still its own");
        kept.releaseReference();
        assertTrue(kept.isNull(), "the last reference released frees it");
    }

    @Test
    void anInnerScopeFreesOnlyWhatItMade() {
        try (Scope outer = Scope.inference()) {
            Tensor before = Ops.ones(3);
            Tensor inner;
            try (Scope s = Scope.inference()) {
                inner = Ops.add(before, 1);
            }
            assertTrue(inner.isNull());
            assertFalse(before.isNull(), "the outer scope's tensor outlives the inner scope");
            assertArrayEquals(new float[] {1, 1, 1}, Ops.toFloats(before));
        }
    }

    @Test
    void withinFreesTheBlocksIntermediatesAndHandsItsOutputToTheEnclosingScope() {
        Tensor[] intermediate = new Tensor[1];
        Tensor out;
        try (Scope outer = Scope.inference()) {
            out = Scope.within(() -> {
                intermediate[0] = Ops.fromFloats(new float[] {2, 4}, 2);
                return Ops.div(intermediate[0], 2);
            });
            assertTrue(intermediate[0].isNull(), "freed as the block returns");
            assertFalse(out.isNull());
            assertArrayEquals(new float[] {1, 2}, Ops.toFloats(out));
        }
        assertTrue(out.isNull(), "owned by the enclosing scope, freed with it");
    }

    @Test
    void inferenceTurnsAutogradOffAndOpenLeavesItOn() {
        assertTrue(GradMode.is_enabled());
        Tensor leaf = Scope.keep(Ops.ones(2).set_requires_grad(true));
        try (Scope s = Scope.inference()) {
            assertFalse(GradMode.is_enabled());
            assertFalse(Ops.mul(leaf, 2).requires_grad(), "no graph is recorded");
        }
        assertTrue(GradMode.is_enabled(), "restored at close");
        try (Scope s = Scope.open()) {
            Tensor y = Ops.mul(leaf, 2);
            assertTrue(y.requires_grad());
            y.sum().backward();
            assertArrayEquals(new float[] {2, 2}, Ops.toFloats(leaf.grad()));
        }
    }
}
