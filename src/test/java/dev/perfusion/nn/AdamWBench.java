package dev.perfusion.nn;

import dev.perfusion.io.Safetensors;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.world.Bundled;
import org.bytedeco.pytorch.AdamWOptions;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.OptimizerParamGroup;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Not a test: {@link AdamW} against libtorch's {@code torch::optim::AdamW} (the C++ frontend's, reached through the
 * presets) on the trainers' parameter sets, for the same updates and for speed. Run it on a quiet machine:
 * <pre>
 *   mvn -o -q test-compile dependency:build-classpath -Dmdep.outputFile=cp.txt -Dmdep.includeScope=test
 *   GOMP_SPINCOUNT=0 java -cp target/test-classes:target/classes:$(cat cp.txt) dev.perfusion.nn.AdamWBench
 * </pre>
 */
public final class AdamWBench {
    private static final double LR = 1e-3, WEIGHT_DECAY = 0.01;

    /** One way to run AdamW over a list of parameters whose gradients are set. */
    private interface Stepper {
        void step();
    }

    public static void main(String[] args) throws IOException {
        torch.set_num_threads(Math.min(2, Runtime.getRuntime().availableProcessors()));
        List<long[]> pretrain = new ArrayList<>();
        for (String part : List.of("unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors")) {
            Safetensors st = Safetensors.open(Bundled.model().resolve(part));
            for (String k : st.keys()) pretrain.add(st.shape(k));
        }
        long[] layerDims = {320, 320, 640, 640, 1280, 1280, 1280, 1280, 1280, 1280, 640, 640, 640, 320, 320, 320};
        List<long[]> concept = new ArrayList<>();
        concept.add(new long[] {768});
        for (long d : layerDims) concept.add(new long[] {d});
        List<long[]> kvFineTune = new ArrayList<>();
        for (long d : layerDims) {
            kvFineTune.add(new long[] {d, 768});
            kvFineTune.add(new long[] {d, 768});
        }
        agreement(pretrain);
        System.out.println("parameter set                         tensors   values  | this AdamW  libtorch AdamW  (ms per step, median of 5 rounds)");
        time("perfusion concept (v*, 16 o*_V)", concept, 400);
        time("bundled world pretraining (UNet+CLIP)", pretrain, 20);
        time("SD 1.5 K/V fine-tune (32 matrices)", kvFineTune, 5);
    }

    private static List<Tensor> params(List<long[]> shapes, long seed) {
        List<Tensor> out = new ArrayList<>();
        torch.manual_seed(seed);
        for (long[] s : shapes) {
            Tensor p = Scope.keep(torch.randn(s).set_requires_grad(true));
            // the gradient stays set: step() reads it and never clears it
            p.mul(torch.randn(s)).sum().backward();
            out.add(p);
        }
        return out;
    }

    private static Stepper ours(List<Tensor> params) {
        List<AdamW.Group> groups = new ArrayList<>();
        for (int i = 0; i < params.size(); i++) groups.add(new AdamW.Group("p" + i, params.get(i), LR));
        AdamW adam = new AdamW(groups, WEIGHT_DECAY);
        return adam::step;
    }

    private static Stepper libtorch(List<Tensor> params) {
        AdamWOptions options = new AdamWOptions(LR);
        options.weight_decay().put(WEIGHT_DECAY);
        org.bytedeco.pytorch.AdamW adam = new org.bytedeco.pytorch.AdamW(new TensorVector(params.get(0)), options);
        // one group per tensor, as the trainers give each tensor its own learning rate
        for (int i = 1; i < params.size(); i++) adam.add_param_group(new OptimizerParamGroup(new TensorVector(params.get(i)), options.clone()));
        return () -> {
            try (NoGradGuard ng = new NoGradGuard()) {
                adam.step();
            }
        };
    }

    /** The two optimizers from the same start with the same gradients, compared after 1, 2 and 3 steps. */
    private static void agreement(List<long[]> shapes) {
        try (Scope s = Scope.open()) {
            List<Tensor> a = params(shapes, 7), b = params(shapes, 7);
            Stepper sa = ours(a), sb = libtorch(b);
            for (int step = 1; step <= 3; step++) {
                sa.step();
                sb.step();
                double worst = 0, worstRel = 0;
                for (int i = 0; i < a.size(); i++) {
                    double d = Ops.maxAbsDiff(a.get(i).detach(), b.get(i).detach());
                    worst = Math.max(worst, d);
                    worstRel = Math.max(worstRel, d / LR);
                }
                System.out.printf(Locale.ROOT, "after step %d: max |ours - libtorch| over %d tensors = %.3g (%.3g of one lr-sized step)%n",
                        step, a.size(), worst, worstRel);
            }
        }
    }

    private static void time(String name, List<long[]> shapes, int steps) {
        long values = shapes.stream().mapToLong(Ops::numel).sum();
        double[] ours = new double[5], theirs = new double[5];
        try (Scope s = Scope.open()) {
            Stepper a = ours(params(shapes, 1)), b = libtorch(params(shapes, 1));
            for (int w = 0; w < 3; w++) {
                a.step();
                b.step();
            }
            for (int round = 0; round < ours.length; round++) {
                ours[round] = perStep(a, steps);
                theirs[round] = perStep(b, steps);
            }
        }
        System.out.printf(Locale.ROOT, "%-38s %6d %9d  | %9.3f  %12.3f%n", name, shapes.size(), values, median(ours), median(theirs));
    }

    private static double perStep(Stepper s, int steps) {
        long t0 = System.nanoTime();
        for (int i = 0; i < steps; i++) s.step();
        return (System.nanoTime() - t0) / 1e6 / steps;
    }

    private static double median(double[] v) {
        double[] c = v.clone();
        Arrays.sort(c);
        return c[c.length / 2];
    }
}
