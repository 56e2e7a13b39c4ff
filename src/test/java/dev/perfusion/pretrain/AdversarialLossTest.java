package dev.perfusion.pretrain;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.perfusion.nn.Weights;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

class AdversarialLossTest {
    /** Sharp 1-pixel stripes, as world pictures; their blur (flat grey), as an L1 decoder's. */
    private static Tensor stripes(int n, int side) {
        float[] v = new float[n * 3 * side * side];
        for (int i = 0; i < v.length; i++) v[i] = (i % side) % 2 == 0 ? 0.8f : -0.8f;
        return Ops.fromFloats(v, n, 3, side, side);
    }

    @Test
    void theCriticScoresPatchesAndLearnsToTellSharpFromBlurred() {
        try (Scope s = Scope.open()) {
            PatchDiscriminator critic = new PatchDiscriminator(8);
            Weights.initRandom(critic, 1);
            assertArrayEquals(new long[] {2, 1, 4, 4}, Ops.shape(critic.scores(stripes(2, 16))), "one score per patch, a quarter of the side");

            AdversarialLoss adversarial = new AdversarialLoss(0.5, 7, 1000);
            Tensor world = stripes(4, 16), blurred = Ops.zerosLike(world);
            double first = adversarial.trainCritic(world, blurred), last = first;
            for (int i = 0; i < 150; i++) last = adversarial.trainCritic(world, blurred);
            assertTrue(last < 0.5 * first, "the hinge loss must fall as the critic learns: " + first + " -> " + last);
        }
    }

    /** Alone first; then the decoder's term, whose gradient at the last layer is the weight times the reconstruction's there. */
    @Test
    void theDecodersTermWaitsForTheCriticThenIsBalancedAgainstTheReconstruction() {
        try (Scope s = Scope.open()) {
            Tensor lastLayer = Ops.mul(torch.randn(3, 3, 1, 1), 0.5);
            lastLayer.set_requires_grad(true);
            Tensor features = torch.randn(2, 3, 16, 16), world = stripes(2, 16);
            AdversarialLoss adversarial = new AdversarialLoss(0.25, 3, 2);
            for (int step = 0; step < 4; step++) {
                Tensor decoded = Ops.conv2d(features, lastLayer, Ops.zeros(new long[] {3}), 1, 0);
                Tensor reconstruction = Ops.mean(decoded.sub(world).abs());
                adversarial.trainCritic(world, decoded);
                Tensor term = adversarial.decoderTerm(decoded, reconstruction, lastLayer);
                if (step < 2) {
                    assertFalse(adversarial.judging());
                    assertEquals(0.0, Ops.item(term), "no term while the critic learns alone");
                    continue;
                }
                assertTrue(adversarial.judging());
                double rec = gradientNorm(reconstruction, lastLayer), adv = gradientNorm(term, lastLayer);
                assertEquals(0.25 * rec, adv, 1e-3 * rec, "the term's gradient is a quarter of the reconstruction's at step " + step);
            }
        }
    }

    @Test
    void aWeightMustBePositiveAndFinite() {
        for (double bad : new double[] {0, -1, Double.NaN, Double.POSITIVE_INFINITY}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new AdversarialLoss(bad, 1, AdversarialLoss.CRITIC_ALONE));
            assertTrue(e.getMessage().contains("adversarial weight"), e.getMessage());
        }
    }

    private static double gradientNorm(Tensor loss, Tensor at) {
        TensorVector g = torch.grad(new TensorVector(loss), new TensorVector(at), new TensorVector(), new BoolOptional(true), false, false);
        return Ops.item(g.get(0).norm());
    }
}
