package dev.perfusion.eval;

import dev.perfusion.io.Safetensors;
import dev.perfusion.nn.AdamW;
import dev.perfusion.nn.Conv2d;
import dev.perfusion.nn.GroupNorm;
import dev.perfusion.nn.Module;
import dev.perfusion.nn.Param;
import dev.perfusion.nn.Weights;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.util.Progress;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.IntFunction;

/** What the two judges of world pictures share: their convolution trunk, their optimiser, their file format. */
final class Judges {
    private Judges() {}

    /** 3x3 convolutions, each followed by GroupNorm(8) and SiLU. */
    static final class ConvTrunk extends Module {
        private final List<Conv2d> convs;
        private final List<GroupNorm> norms;

        ConvTrunk(int[] channels, int[] strides) {
            List<Conv2d> c = new ArrayList<>();
            List<GroupNorm> n = new ArrayList<>();
            for (int i = 0; i + 1 < channels.length; i++) {
                c.add(new Conv2d(channels[i], channels[i + 1], 3, strides[i], 1));
                n.add(new GroupNorm(8, channels[i + 1], 1e-5));
            }
            this.convs = children("convs", c);
            this.norms = children("norms", n);
        }

        Tensor forward(Tensor x) {
            for (int i = 0; i < convs.size(); i++) x = Ops.silu(norms.get(i).forward(convs.get(i).forward(x)));
            return x;
        }
    }

    /** Makes every parameter of the modules trainable under one AdamW (weight decay 0.01). */
    static AdamW optimizer(double lr, Module... modules) {
        List<AdamW.Group> groups = new ArrayList<>();
        for (Module m : modules) {
            for (Map.Entry<String, Param> e : m.namedParameters().entrySet()) {
                e.getValue().t().set_requires_grad(true);
                groups.add(new AdamW.Group(e.getKey(), e.getValue().t(), lr));
            }
        }
        return new AdamW(groups, 0.01);
    }

    /** Minimises one loss a step under a cosine learning-rate decay, showing the smoothed loss. */
    static void train(String what, int steps, AdamW optimizer, Progress progress, IntFunction<Tensor> lossAtStep) {
        double smoothed = Double.NaN;
        for (int step = 0; step < steps; step++) {
            try (Scope s = Scope.open()) {
                Tensor loss = lossAtStep.apply(step);
                double value = Ops.item(loss);
                if (!Double.isFinite(value)) { // its weights would be saved as a judge whose every score is wrong
                    throw new dev.perfusion.tensor.NonFiniteException("training the " + what + ": the loss is " + value + " at step " + (step + 1) + " of " + steps
                            + "; nothing was saved");
                }
                smoothed = Double.isNaN(smoothed) ? value : 0.98 * smoothed + 0.02 * value;
                loss.backward();
            }
            optimizer.setLrScale(0.5 * (1 + Math.cos(Math.PI * step / steps)));
            optimizer.step();
            optimizer.zeroGrad();
            progress.update(what, step + 1, steps, String.format(Locale.ROOT, "loss %.3f", smoothed));
        }
    }

    static void freeze(Module m) {
        for (Param p : m.namedParameters().values()) p.t().set_requires_grad(false);
    }

    /** A judge file's metadata: what it is and how it was trained, in order; its accuracy figures follow ({@link #fraction}). */
    static Map<String, String> metadata(String what, int steps, String perStep, int perStepCount, long seed) {
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("what", "perfusion world " + what);
        meta.put("steps", Integer.toString(steps));
        meta.put(perStep, Integer.toString(perStepCount));
        meta.put("seed", Long.toString(seed));
        return meta;
    }

    static String fraction(double v) {
        return String.format(Locale.ROOT, "%.4f", v);
    }

    static void save(Module m, Path file, Map<String, String> metadata) throws IOException {
        Map<String, Tensor> t = new LinkedHashMap<>();
        m.namedParameters().forEach((k, p) -> t.put(k, Ops.requireFinite(p.t(), metadata.get("what") + "'s " + k)));
        Safetensors.write(file, t, metadata, Safetensors.StoredType.F16);
    }

    /**
     * A judge's weights from {@code file}, which must be that judge's ({@link #metadata}'s {@code what}; another judge's
     * trunk has the same shapes) and finite (a NaN weight reads every picture as one class, silently).
     */
    static <M extends Module> M load(M model, Path file, String what, String command) throws IOException {
        if (!Files.isRegularFile(file)) throw new IOException("no " + what + " at " + file + " (train one with `perfusion " + command + "`)");
        Safetensors st = Safetensors.open(file);
        String is = st.metadata().get("what");
        if (is != null && !is.equals("perfusion world " + what)) {
            throw new IOException(file + ": a " + is.replace("perfusion world ", "world ") + ", not the " + what + " this needs");
        }
        Weights.load(model, st, "", Ops.cpu(), torch.ScalarType.Float, what);
        for (Map.Entry<String, Param> e : model.namedParameters().entrySet()) {
            if (!Ops.allFinite(e.getValue().t())) throw new IOException(file + ": tensor " + e.getKey() + " of the " + what + " is not finite (NaN or infinite values)");
        }
        return model;
    }
}
