package dev.perfusion.sampling;

import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

/**
 * The training noise schedule: betas and cumulative alphas computed in float32 with libtorch, as diffusers
 * does, so the values are bit-identical; plus noising and v targets for training.
 */
public final class NoiseSchedule {
    private final float[] betas;
    private final float[] alphasCumprod;

    public NoiseSchedule(SchedulerConfig c) {
        int n = c.numTrainTimesteps();
        double start = c.betaStart(), end = c.betaEnd();
        String kind = c.betaSchedule();
        try (Scope s = Scope.inference()) {
            TensorOptions f32 = new TensorOptions(torch.ScalarType.Float);
            Tensor b = switch (kind) {
                case "linear" -> torch.linspace(new Scalar(start), new Scalar(end), n, f32);
                case "scaled_linear" -> torch.linspace(new Scalar(Math.sqrt(start)), new Scalar(Math.sqrt(end)), n, f32).pow(new Scalar(2));
                case "squaredcos_cap_v2" -> Ops.fromFloats(cosineBetas(n), n);
                default -> throw new IllegalArgumentException("unsupported beta_schedule '" + kind + "'");
            };
            Tensor alphas = Ops.add(Ops.mul(b, -1.0), 1.0);
            this.betas = Ops.toFloats(b);
            this.alphasCumprod = Ops.toFloats(torch.cumprod(alphas, 0));
        }
    }

    /** Glide's cosine schedule (betas_for_alpha_bar), computed in double then stored as float32. */
    private static float[] cosineBetas(int n) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            double t1 = (double) i / n, t2 = (double) (i + 1) / n;
            out[i] = (float) Math.min(1 - alphaBar(t2) / alphaBar(t1), 0.999);
        }
        return out;
    }

    private static double alphaBar(double t) {
        double c = Math.cos((t + 0.008) / 1.008 * Math.PI / 2);
        return c * c;
    }

    public int trainSteps() { return betas.length; }

    public float[] betas() { return betas.clone(); }

    public float[] alphasCumprod() { return alphasCumprod.clone(); }

    public double alphaCumprod(int t) { return alphasCumprod[t]; }

    /** x_t = sqrt(ᾱ_t) x0 + sqrt(1 - ᾱ_t) ε, one timestep per batch element. */
    public Tensor addNoise(Tensor x0, Tensor noise, long[] timesteps) {
        Tensor[] coeffs = perSample(timesteps, x0);
        return Ops.add(Ops.mul(coeffs[0], x0), Ops.mul(coeffs[1], noise));
    }

    /** The v-prediction target sqrt(ᾱ_t) ε - sqrt(1 - ᾱ_t) x0. */
    public Tensor velocity(Tensor x0, Tensor noise, long[] timesteps) {
        Tensor[] coeffs = perSample(timesteps, x0);
        return Ops.sub(Ops.mul(coeffs[0], noise), Ops.mul(coeffs[1], x0));
    }

    private Tensor[] perSample(long[] timesteps, Tensor like) {
        int dims = (int) like.dim();
        long[] shape = new long[dims];
        java.util.Arrays.fill(shape, 1);
        shape[0] = timesteps.length;
        float[] a = new float[timesteps.length], b = new float[timesteps.length];
        for (int i = 0; i < timesteps.length; i++) {
            double ac = alphasCumprod[(int) timesteps[i]];
            a[i] = (float) Math.sqrt(ac);
            b[i] = (float) Math.sqrt(1 - ac);
        }
        return new Tensor[] {Ops.fromFloats(a, shape).to(like.device(), like.scalar_type()),
                Ops.fromFloats(b, shape).to(like.device(), like.scalar_type())};
    }
}
