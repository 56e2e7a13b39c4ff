package dev.perfusion.nn;

import dev.perfusion.io.StateDict;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/** Fills a module's parameters: from a checkpoint by name, or with seeded random values. */
public final class Weights {
    private Weights() {}

    /**
     * Loads every parameter of {@code module} from {@code weights} (keys prefixed with {@code prefix}),
     * converting to {@code dtype} on {@code device}. Missing tensors or wrong shapes fail with one message that
     * lists them all (the first few) and names the source.
     */
    public static void load(Module module, StateDict weights, String prefix, Device device, torch.ScalarType dtype,
                            String what) {
        List<String> missing = new ArrayList<>();
        List<String> wrongShape = new ArrayList<>();
        Map<String, Param> params = module.namedParameters();
        for (Map.Entry<String, Param> e : params.entrySet()) {
            String key = prefix + e.getKey();
            if (!weights.has(key)) {
                missing.add(key);
                continue;
            }
            long[] stored = weights.shape(key);
            long[] expected = e.getValue().shape();
            if (!Arrays.equals(stored, expected)) {
                wrongShape.add(weights.describe(key) + " has shape " + Arrays.toString(stored) + ", the " + what
                        + " config expects " + Arrays.toString(expected));
            }
        }
        // tensors the module has no place for: the weights are another architecture's than its config (a second
        // transformer block per level under a config of one, a norm the config does not build), which loading
        // them without a word would draw otherwise than the model they came from
        List<String> unused = weights.keys().stream().filter(k -> k.startsWith(prefix) && !params.containsKey(k.substring(prefix.length())))
                .filter(k -> !DROPPED_ALSO_BY_TRANSFORMERS.contains(k.substring(prefix.length()))).sorted().toList();
        if (!unused.isEmpty()) {
            throw new IllegalArgumentException("cannot load the " + what + ": " + unused.size() + " tensors of the weights have no place in its config ("
                    + String.join(", ", unused.stream().limit(5).map(weights::describe).toList()) + (unused.size() > 5 ? ", ..." : "")
                    + "): the weights are another model's than the config describes");
        }
        if (!missing.isEmpty() || !wrongShape.isEmpty()) {
            StringBuilder msg = new StringBuilder("cannot load the " + what + ":");
            if (!missing.isEmpty()) {
                msg.append(" ").append(missing.size()).append(" of ").append(params.size()).append(" tensors are missing (")
                        .append(String.join(", ", missing.subList(0, Math.min(5, missing.size()))))
                        .append(missing.size() > 5 ? ", ..." : "").append(")");
            }
            for (String w : wrongShape.subList(0, Math.min(5, wrongShape.size()))) msg.append("\n  ").append(w);
            if (wrongShape.size() > 5) msg.append("\n  ... and ").append(wrongShape.size() - 5).append(" more with wrong shapes");
            throw new IllegalArgumentException(msg.toString());
        }
        for (Map.Entry<String, Param> e : params.entrySet()) {
            // one scope per tensor: the float32 staging copy is freed before the next tensor is read
            try (Scope s = Scope.inference()) {
                e.getValue().set(weights.get(prefix + e.getKey()).to(device, dtype));
            }
        }
    }

    /**
     * Stored tensors that transformers, too, reads past: CLIP's position ids (a buffer older transformers saved), and
     * the projection and temperature of a CLIP text tower saved with them, of which SD's text encoder uses neither.
     */
    private static final Set<String> DROPPED_ALSO_BY_TRANSFORMERS = Set.of("text_model.embeddings.position_ids", "text_projection.weight", "logit_scale");

    /** A module's parameters as the named tensors of a checkpoint ({@code what} names them in messages). */
    public static StateDict asStateDict(Module module, String what) {
        Map<String, Param> parameters = module.namedParameters();
        return new StateDict() {
            @Override public Set<String> keys() { return parameters.keySet(); }
            @Override public Tensor get(String name) { return parameters.get(name).t(); }
            @Override public long[] shape(String name) { return Ops.shape(parameters.get(name).t()); }
            @Override public String describe(String name) { return what + " weight " + name; }
        };
    }

    /**
     * Seeded initialisation for training from scratch and for benchmarks: matrices and kernels
     * N(0, 1/fan_in), embeddings N(0, 0.02^2), norm weights 1, biases 0.
     */
    public static void initRandom(Module module, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        for (Map.Entry<String, Param> e : module.namedParameters().entrySet()) {
            try (Scope s = Scope.inference()) {
                e.getValue().set(randomValue(e.getKey(), e.getValue().shape(), rng.nextLong()));
            }
        }
    }

    /** Converts every weight of {@code module} to {@code dtype} (a model built in fp32, run in bf16). */
    public static void convert(Module module, torch.ScalarType dtype) {
        for (Param p : module.namedParameters().values()) {
            try (Scope s = Scope.inference()) {
                p.set(p.t().to(dtype));
            }
        }
    }

    private static Tensor randomValue(String name, long[] shape, long seed) {
        if (shape.length == 1) return name.endsWith("weight") ? Ops.ones(shape) : Ops.zeros(shape);
        long fanIn = 1;
        for (int i = 1; i < shape.length; i++) fanIn *= shape[i];
        double std = name.contains("embedding") ? 0.02 : 1.0 / Math.sqrt(fanIn);
        torch.manual_seed(seed);
        return torch.randn(shape).mul(new org.bytedeco.pytorch.Scalar(std));
    }
}
