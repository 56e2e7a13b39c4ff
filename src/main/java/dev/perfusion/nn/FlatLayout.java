package dev.perfusion.nn;

import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.IntFunction;

/**
 * Tensors of one dtype and device laid end to end in one contiguous buffer (apex's "flat master parameters"):
 * an update of all of them, their gradients or a copy of them is then one operation on a buffer instead of a Java
 * loop of native calls per tensor. A tensor {@link #adopt adopted} keeps its {@code Tensor} object, only its storage
 * becomes a slice of the buffer, so the modules that hold it and autograd see the same leaf as before.
 */
public final class FlatLayout {
    private final List<long[]> shapes = new ArrayList<>();
    private final long[] offsets;
    private final long total;
    private final TensorOptions options;

    /** The layout of {@code tensors}, in their order. */
    public FlatLayout(List<Tensor> tensors) {
        if (tensors.isEmpty()) throw new IllegalArgumentException("no tensors to lay out");
        Tensor first = tensors.get(0);
        options = Scope.keep(first.options());
        offsets = new long[tensors.size()];
        long at = 0;
        for (int i = 0; i < tensors.size(); i++) {
            Tensor t = tensors.get(i);
            if (t.scalar_type().intern() != first.scalar_type().intern() || !t.device().equals(first.device())) {
                throw new IllegalArgumentException("tensor " + i + " is " + t.scalar_type() + " on " + t.device().str().getString()
                        + ", tensor 0 " + first.scalar_type() + " on " + first.device().str().getString() + ": one buffer holds one dtype on one device");
            }
            shapes.add(Ops.shape(t));
            offsets[i] = at;
            at += t.numel();
        }
        total = at;
    }

    /** A buffer of zeros for the layout, kept beyond any open scope. */
    public Tensor zeros() {
        return Scope.keep(torch.zeros(new long[] {total}, options));
    }

    /** Each tensor's slice of {@code buffer}, in its shape; they share the buffer's storage. */
    public List<Tensor> views(Tensor buffer) {
        List<Tensor> views = new ArrayList<>(shapes.size());
        for (int i = 0; i < shapes.size(); i++) views.add(buffer.narrow(0, offsets[i], Ops.numel(shapes.get(i))).view(shapes.get(i)));
        return views;
    }

    /** The tensors (one per slice, in order, as {@link #views} gives them) end to end in a new buffer. */
    public Tensor join(List<Tensor> tensors) {
        if (tensors.size() != shapes.size()) throw new IllegalArgumentException(tensors.size() + " tensors, the layout has " + shapes.size());
        List<Tensor> flat = new ArrayList<>(tensors.size());
        for (int i = 0; i < tensors.size(); i++) {
            if (!Arrays.equals(Ops.shape(tensors.get(i)), shapes.get(i))) {
                throw new IllegalArgumentException("tensor " + i + " has shape " + Ops.shapeString(tensors.get(i)) + ", the layout's is " + Arrays.toString(shapes.get(i)));
            }
            flat.add(tensors.get(i).reshape(-1));
        }
        return Ops.cat(flat, 0);
    }

    /**
     * Moves the tensors' values into a new buffer, kept, and makes each tensor a view of its slice (the same
     * {@code Tensor} objects, leaves that require grad stay so); returns the buffer.
     */
    public Tensor adopt(List<Tensor> tensors) {
        Tensor buffer = zeros();
        try (Scope s = Scope.inference()) { // set_ on a leaf that requires grad is allowed with autograd off only
            List<Tensor> views = views(buffer);
            for (int i = 0; i < views.size(); i++) {
                views.get(i).copy_(tensors.get(i));
                tensors.get(i).set_(views.get(i));
            }
        }
        return buffer;
    }

    /**
     * Gives each leaf a {@code .grad} that is a view of a new zero buffer, kept, which it returns. Backward adds into
     * a defined gradient in place (libtorch's AccumulateGrad, without create_graph), so the gradients land in the
     * buffer; they must then be zeroed in place, never reset to undefined.
     */
    public Tensor adoptGradients(List<Tensor> leaves) {
        Tensor buffer = zeros();
        try (Scope s = Scope.inference()) {
            List<Tensor> views = views(buffer);
            for (int i = 0; i < views.size(); i++) leaves.get(i).mutable_grad().put(views.get(i)); // grad = view, as C++'s p.mutable_grad() = view
        }
        return buffer;
    }

    /**
     * Fails unless each tensor is still its slice of {@code buffer}: something that replaced a tensor (a gradient
     * made anew instead of added into) would leave the buffer, and its updates would no longer reach it.
     */
    public void requireViews(List<Tensor> tensors, Tensor buffer, IntFunction<String> describe) {
        for (int i = 0; i < tensors.size(); i++) {
            Tensor t = tensors.get(i);
            if (!t.defined() || !t.is_alias_of(buffer) || t.storage_offset() != buffer.storage_offset() + offsets[i]
                    || !Arrays.equals(Ops.shape(t), shapes.get(i)) || !t.is_contiguous()) {
                throw new IllegalStateException(describe.apply(i) + " is no longer its slice of the flat buffer: something replaced"
                        + " it instead of updating it in place, and the updates of the buffer would no longer reach it");
            }
        }
    }
}
