package dev.perfusion.vae;

import dev.perfusion.Fixtures;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The sd-tiny VAE against diffusers' AutoencoderKL outputs (fixture README section d). */
class AutoencoderKLGoldenTest {
    private static final double TOLERANCE = 2e-4;
    private static AutoencoderKL vae;

    @BeforeEach
    void requireFixtures() {
        Fixtures.shared();
    }

    @BeforeAll
    static void loadFixtureModel() throws IOException {
        if (!Fixtures.present()) return; // each test then skips, saying so (requireFixtures)
        try (Scope s = Scope.inference()) {
            vae = AutoencoderKL.load(Fixtures.diffusers().resolve("vae"), Ops.cpu(), torch.ScalarType.Float);
        }
    }

    private static Tensor golden(String name) {
        return Fixtures.golden(name).toTensor();
    }

    private static void assertClose(String what, Tensor actual, Tensor expected, double tolerance) {
        assertArrayEquals(Ops.shape(expected), Ops.shape(actual), what + " shape");
        double diff = Ops.maxAbsDiff(actual, expected);
        System.out.printf("%s: max abs diff %.3e (tolerance %.0e)%n", what, diff, tolerance);
        assertTrue(diff <= tolerance, what + ": max abs diff " + diff);
    }

    @Test
    void fixtureParameterCount() {
        assertEquals(1_067_079L, vae.parameterCount());
        assertEquals(List.of(32, 32, 32, 64), vae.config().blockOutChannels());
    }

    @Test
    void decodeMatchesDiffusers() {
        try (Scope s = Scope.inference()) {
            Tensor z = golden("vae_decode_z.npy");
            assertArrayEquals(new long[] {2, 4, 16, 12}, Ops.shape(z));
            Tensor out = vae.decode(z);
            assertArrayEquals(new long[] {2, 3, 128, 96}, Ops.shape(out));
            assertClose("vae decode", out, golden("vae_decode_out.npy"), TOLERANCE);
        }
    }

    @Test
    void encodeMatchesDiffusers() {
        try (Scope s = Scope.inference()) {
            DiagonalGaussian posterior = vae.encode(golden("vae_encode_image.npy"));
            assertClose("vae encode mean", posterior.mean(), golden("vae_encode_mean.npy"), TOLERANCE);
            assertClose("vae encode logvar", posterior.logvar(), golden("vae_encode_logvar.npy"), TOLERANCE);
            assertClose("vae encode std", posterior.std(), golden("vae_encode_std.npy"), TOLERANCE);
        }
    }

    @Test
    void latentsFromImageIsScaledMean() {
        try (Scope s = Scope.inference()) {
            Tensor latents = vae.latentsFromImage(golden("vae_encode_image.npy"));
            Tensor expected = Ops.mul(golden("vae_encode_mean.npy"), 0.18215);
            assertClose("vae latentsFromImage", latents, expected, TOLERANCE * 0.18215);
        }
    }

    @Test
    void sampleWithZeroNoiseIsTheMean() {
        try (Scope s = Scope.inference()) {
            DiagonalGaussian posterior = vae.encode(golden("vae_encode_image.npy"));
            Tensor noise = Ops.ones(Ops.shape(posterior.mean()));
            Tensor expected = Ops.add(posterior.mean(), posterior.std());
            assertEquals(0.0, Ops.maxAbsDiff(posterior.sample(noise), expected), 1e-7);
            assertEquals(0.0, Ops.maxAbsDiff(posterior.sample(Ops.mul(noise, 0.0)), posterior.mean()), 0.0);
        }
    }

    @Test
    void pipelineImageFromFinalLatents() {
        try (Scope s = Scope.inference()) {
            Tensor image = vae.imageFromLatents(golden("pipe_ddim_final_latents.npy"));
            assertClose("vae imageFromLatents(pipe_ddim final latents)", image, golden("pipe_ddim_image_raw_nchw.npy"), 2e-3);
        }
    }
}
