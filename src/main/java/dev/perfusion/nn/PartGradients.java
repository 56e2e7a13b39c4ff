package dev.perfusion.nn;

import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.tensor.Threads;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.List;
import java.util.function.IntFunction;
import java.util.stream.IntStream;

/**
 * The gradients of a loss made of independent parts (micro-batches, slices of a batch), each part's forward and
 * backward computed on its own thread, side by side. Each part returns its own gradients, which are added into the
 * leaves' {@code .grad} in part order: the sum is the same whichever part finishes first, and the same as the parts
 * one after another on one thread.
 */
public final class PartGradients {
    private PartGradients() {}

    /** What a part reports (its loss), and the gradient of its objective for each leaf (null where it does not reach one). */
    public record Part<T>(T value, List<Tensor> gradients) {
        public static <T> Part<T> withoutGradients(T value) {
            return new Part<>(value, List.of());
        }
    }

    /** Every leaf's {@code .grad} as zeros where it has none yet, so that the parts' gradients add into it in place. */
    public static void define(List<Tensor> leaves) {
        try (Scope s = Scope.open()) {
            for (Tensor leaf : leaves) {
                if (!leaf.grad().defined()) Ops.mul(leaf, 0).sum().backward();
            }
        }
    }

    /**
     * Within a part: the gradients of {@code objective} for each leaf (null where it does not reach one), kept past the
     * part's scope until {@link #run} has added them.
     */
    public static List<Tensor> of(Tensor objective, List<Tensor> leaves) {
        TensorVector grads = torch.grad(new TensorVector(objective), new TensorVector(leaves.toArray(new Tensor[0])),
                new TensorVector(), new BoolOptional(false), false, true);
        List<Tensor> gradients = new ArrayList<>(leaves.size());
        for (int i = 0; i < leaves.size(); i++) {
            Tensor g = new Tensor(grads.get(i)); // an owned copy: get() points into the vector
            gradients.add(g.defined() ? Scope.keep(g) : null);
        }
        return gradients;
    }

    /**
     * Runs parts 0..count-1, side by side on {@code side}'s workers (one after another where it is null), adds their
     * gradients into the leaves' {@code .grad} (which {@link #define} made) in part order, and returns their values
     * in part order.
     */
    public static <T> List<T> run(Threads.SideBySide side, int count, IntFunction<Part<T>> part, List<Tensor> leaves) {
        List<Part<T>> done = side == null ? IntStream.range(0, count).mapToObj(part).toList() : side.run(count, part);
        List<T> values = new ArrayList<>(count);
        try (NoGradGuard ng = new NoGradGuard()) {
            for (Part<T> p : done) {
                values.add(p.value());
                for (int i = 0; i < p.gradients().size(); i++) {
                    Tensor g = p.gradients().get(i);
                    if (g == null) continue;
                    leaves.get(i).grad().add_(g);
                    g.releaseReference();
                }
            }
        }
        return values;
    }
}
