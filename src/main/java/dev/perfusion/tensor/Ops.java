package dev.perfusion.tensor;

import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.GradMode;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import java.util.Arrays;
import java.util.List;

/**
 * The project's thin layer over the generated libtorch API, so that model code reads like the model.
 * Every function returns a new tensor owned by the innermost open {@link Scope}.
 */
public final class Ops {
    private Ops() {}

    static {
        Libtorch.ensureLoaded();
        // NNPACK cannot initialise on x86 CPUs without its kernels (it logs a warning on every convolution that
        // asks); oneDNN serves every convolution there, so never ask.
        torch.globalContext().setUserEnabledNNPACK(false);
    }

    // ---- creation and read-back -------------------------------------------------------------

    /** A float32 CPU tensor holding a copy of {@code data}. */
    public static Tensor fromFloats(float[] data, long... shape) {
        checkCount(data.length, shape);
        try (FloatPointer p = new FloatPointer(data)) {
            return torch.from_blob(p, shape, new TensorOptions(torch.ScalarType.Float)).clone();
        }
    }

    /** A float64 CPU tensor holding a copy of {@code data}. */
    public static Tensor fromDoubles(double[] data, long... shape) {
        checkCount(data.length, shape);
        try (DoublePointer p = new DoublePointer(data)) {
            return torch.from_blob(p, shape, new TensorOptions(torch.ScalarType.Double)).clone();
        }
    }

    /** An int64 CPU tensor holding a copy of {@code data}. */
    public static Tensor fromLongs(long[] data, long... shape) {
        checkCount(data.length, shape);
        try (LongPointer p = new LongPointer(data)) {
            return torch.from_blob(p, shape, new TensorOptions(torch.ScalarType.Long)).clone();
        }
    }

    private static void checkCount(int count, long[] shape) {
        if (count != numel(shape)) {
            throw new IllegalArgumentException(count + " values do not fill shape " + Arrays.toString(shape));
        }
    }

    public static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }

    public static Tensor zeros(long... shape) {
        return torch.zeros(shape, new TensorOptions(torch.ScalarType.Float));
    }

    public static Tensor zerosLike(Tensor t) {
        return torch.zeros_like(t);
    }

    public static Tensor ones(long... shape) {
        return torch.ones(shape, new TensorOptions(torch.ScalarType.Float));
    }

    public static Tensor scalar(double v) {
        return fromFloats(new float[] {(float) v});
    }

    /** Copies a tensor of any dtype/device to a Java float array (C order). */
    public static float[] toFloats(Tensor t) {
        Tensor c = t.detach().to(cpu(), torch.ScalarType.Float).contiguous();
        float[] out = new float[Math.toIntExact(c.numel())];
        new FloatPointer(c.data_ptr_float()).capacity(out.length).get(out);
        return out;
    }

    public static double[] toDoubles(Tensor t) {
        Tensor c = t.detach().to(cpu(), torch.ScalarType.Double).contiguous();
        double[] out = new double[Math.toIntExact(c.numel())];
        new DoublePointer(c.data_ptr_double()).capacity(out.length).get(out);
        return out;
    }

    public static long[] toLongs(Tensor t) {
        Tensor c = t.detach().to(cpu(), torch.ScalarType.Long).contiguous();
        long[] out = new long[Math.toIntExact(c.numel())];
        new LongPointer(c.data_ptr_long()).capacity(out.length).get(out);
        return out;
    }

    public static double item(Tensor t) {
        return t.item().toDouble();
    }

    /** True when every element is finite (no NaN, no infinity); an empty tensor is finite. */
    public static boolean allFinite(Tensor t) {
        return torch.isfinite(t.detach()).all().item().toBool();
    }

    /** Throws {@link NonFiniteException} naming {@code what} when {@code t} holds a NaN or an infinity. */
    public static Tensor requireFinite(Tensor t, String what) {
        if (!allFinite(t)) {
            boolean nan = t.detach().isnan().any().item().toBool();
            throw new NonFiniteException(what + " is not finite (" + (nan ? "NaN" : "infinite") + " values)");
        }
        return t;
    }

    public static long[] shape(Tensor t) {
        // the native size list and its copy go at once, not with the GC: a shape asked outside a scope left them behind
        try (org.bytedeco.javacpp.PointerScope scope = new org.bytedeco.javacpp.PointerScope()) {
            return t.sizes().vec().get();
        }
    }

    public static String shapeString(Tensor t) {
        return Arrays.toString(shape(t));
    }

    // ---- devices and dtypes -----------------------------------------------------------------

    public static Device cpu() {
        return new Device(torch.DeviceType.CPU);
    }

    public static Tensor toFloat32(Tensor t) {
        return t.to(torch.ScalarType.Float);
    }

    /** {@code t} in fp32 where it is in a lower precision (bf16, fp16), else {@code t} itself (fp32, fp64). */
    public static Tensor atLeastFloat32(Tensor t) {
        torch.ScalarType type = t.scalar_type().intern();
        return type == torch.ScalarType.Float || type == torch.ScalarType.Double ? t : t.to(torch.ScalarType.Float);
    }

    /**
     * A new leaf tensor holding {@code initial}'s values, at least in fp32, tracked by autograd: what an optimiser
     * trains, at full precision whatever the model computes in (a bf16 model's forward reads it rounded).
     */
    public static Tensor trainableCopy(Tensor initial) {
        return atLeastFloat32(initial.detach()).clone().set_requires_grad(true);
    }

    public static Tensor to(Tensor t, Device device, torch.ScalarType dtype) {
        return t.to(device, dtype);
    }

    // ---- arithmetic ---------------------------------------------------------------------------

    public static Tensor add(Tensor a, Tensor b) { return a.add(b); }
    public static Tensor add(Tensor a, double b) { return a.add(new Scalar(b)); }
    public static Tensor sub(Tensor a, Tensor b) { return a.sub(b); }
    public static Tensor mul(Tensor a, Tensor b) { return a.mul(b); }
    public static Tensor mul(Tensor a, double b) { return a.mul(new Scalar(b)); }
    public static Tensor div(Tensor a, Tensor b) { return a.div(b); }
    public static Tensor div(Tensor a, double b) { return a.div(new Scalar(b)); }
    public static Tensor matmul(Tensor a, Tensor b) {
        if (FlopCounter.enabled()) FlopCounter.add(2 * a.numel() * shape(b)[(int) b.dim() - 1]);
        long t0 = OpClock.now();
        Tensor out = a.matmul(b);
        if (OpClock.enabled()) OpClock.add("matmul", t0);
        return out;
    }
    public static Tensor sqrt(Tensor a) { return a.sqrt(); }
    public static Tensor exp(Tensor a) { return a.exp(); }
    public static Tensor neg(Tensor a) { return a.neg(); }

    /** {@code a + alpha * b}, one fused kernel. */
    public static Tensor addScaled(Tensor a, Tensor b, double alpha) { return a.add(b, new Scalar(alpha)); }

    public static Tensor clamp(Tensor a, double min, double max) {
        return torch.clamp(a, new org.bytedeco.pytorch.ScalarOptional(new Scalar(min)),
                new org.bytedeco.pytorch.ScalarOptional(new Scalar(max)));
    }

    public static Tensor sum(Tensor a, long dim, boolean keepDim) {
        return a.sum(new long[] {dim}, keepDim, new ScalarTypeOptional());
    }

    public static Tensor mean(Tensor a, long dim, boolean keepDim) {
        return a.mean(new long[] {dim}, keepDim, new ScalarTypeOptional());
    }

    public static Tensor mean(Tensor a) { return a.mean(); }

    /** The cosine of two vectors of the same shape. */
    public static double cosine(Tensor a, Tensor b) {
        return item(a.mul(b).sum()) / Math.sqrt(item(a.mul(a).sum()) * item(b.mul(b).sum()));
    }

    /** Each row of [N, D] divided by its L2 norm (plus 1e-6, so that a zero row stays finite): cosine similarity by matmul. */
    public static Tensor unitRows(Tensor x) {
        return div(x, add(x.norm(new org.bytedeco.pytorch.ScalarOptional(new Scalar(2.0)), new long[] {1}, true), 1e-6));
    }

    public static Tensor mseLoss(Tensor prediction, Tensor target) {
        return torch.mse_loss(prediction, target);
    }

    // ---- activations --------------------------------------------------------------------------

    public static Tensor silu(Tensor x) { return torch.silu(x); }
    public static Tensor sigmoid(Tensor x) { return torch.sigmoid(x); }
    public static Tensor gelu(Tensor x) { return torch.gelu(x); }
    public static Tensor geluTanh(Tensor x) { return torch.gelu(x, "tanh"); }
    public static Tensor softmax(Tensor x, long dim) { return torch.softmax(x, dim); }

    /** CLIP's {@code x * sigmoid(1.702 x)}. */
    public static Tensor quickGelu(Tensor x) { return x.mul(torch.sigmoid(x.mul(new Scalar(1.702)))); }

    // ---- layers -------------------------------------------------------------------------------

    public static Tensor linear(Tensor x, Tensor weight, Tensor bias) {
        long multiplyAdds = x.numel() * shape(weight)[0];
        if (FlopCounter.enabled()) FlopCounter.add(2 * multiplyAdds);
        long t0 = OpClock.now();
        int parts = multiplyAdds >= SPLIT_MIN_MULTIPLY_ADDS && x.is_cpu() && x.scalar_type().intern() == torch.ScalarType.Float
                && !GradMode.is_enabled() ? Threads.partsForOneMatmul() : 1;
        Tensor out = parts > 1 ? linearByRows(x, weight, bias, parts)
                : bias == null ? torch.linear(x, weight) : torch.linear(x, weight, new TensorOptional(bias));
        if (OpClock.enabled()) OpClock.add("linear", t0);
        return out;
    }

    /** Below this many multiply-adds a matmul is over before a second thread could join it. */
    private static final long SPLIT_MIN_MULTIPLY_ADDS = 1L << 22;

    /**
     * x W^T + b with x's rows split into {@code parts}, computed at once, each on one OpenBLAS thread: OpenBLAS's own
     * pool would spin beside libtorch's threads ({@link Threads}). Each output row is the same dot products as
     * unsplit; only which kernel tail computes it may differ, in the last bits. Without gradients only.
     */
    private static Tensor linearByRows(Tensor x, Tensor weight, Tensor bias, int parts) {
        long[] in = shape(x);
        long features = in[in.length - 1], outFeatures = shape(weight)[0];
        Tensor rows = x.reshape(-1, features);
        long n = shape(rows)[0], chunk = (n + parts - 1) / parts;
        Tensor out = rows.new_empty(new long[] {n, outFeatures}, new TensorOptions(torch.ScalarType.Float));
        Threads.eachAPart(parts, k -> {
            long start = k * chunk, length = Math.min(chunk, n - start);
            if (length <= 0) return;
            Tensor target = out.narrow(0, start, length), source = rows.narrow(0, start, length);
            if (bias == null) torch.linear_out(target, source, weight);
            else torch.linear_out(target, source, weight, new TensorOptional(bias));
        });
        long[] shape = in.clone();
        shape[shape.length - 1] = outFeatures;
        return out.view(shape);
    }

    public static Tensor conv2d(Tensor x, Tensor weight, Tensor bias, long stride, long padding) {
        if (FlopCounter.enabled()) {
            long[] xs = shape(x), ws = shape(weight);
            long oh = (xs[2] + 2 * padding - ws[2]) / stride + 1, ow = (xs[3] + 2 * padding - ws[3]) / stride + 1;
            FlopCounter.add(2 * xs[0] * ws[0] * oh * ow * ws[1] * ws[2] * ws[3]);
        }
        long outChannels = shape(weight)[0], inChannels = shape(weight)[1];
        if (lowPrecisionOnCpu(x) && (outChannels % CONV_CHANNEL_BLOCK != 0 || inChannels % CONV_CHANNEL_BLOCK != 0)) {
            // oneDNN's AVX512-BF16 forward kernel (jit_bf16:avx512_core_bf16, the one CPUs without AMX get, e.g. Zen 4)
            // computes wrong values on partial 16-channel blocks: 20-43% relative error for 3, 4, 8, 24 or 40 output
            // channels, and NaN or run-to-run differences for 24 or 40 input channels (measured against float64; full
            // blocks are exact to bf16 rounding). Zero channels up to full blocks keep it on its correct path.
            return convolveOnFullBlocks(x, weight, bias, stride, padding, fullBlocks(inChannels), fullBlocks(outChannels));
        }
        if (outChannels % CONV_CHANNEL_BLOCK != 0 && backpropagatesToInput(x, weight)) {
            // oneDNN's CPU backward-data kernel for a k x k convolution (k > 1) whose output channels are not a
            // multiple of its 16-channel block reads the unused lanes of the block from uninitialised memory; where
            // that memory held a NaN or Inf (a freed attention mask's -inf), the input gradient becomes NaN
            // (measured: 0-40% of calls for 1, 3, 4, 8, 12, 24 output channels; never for multiples of 16, 1x1
            // kernels or the weight gradient). Zero output channels up to the block size keep it on full blocks.
            return convolveOnFullBlocks(x, weight, bias, stride, padding, inChannels, fullBlocks(outChannels));
        }
        return convolve(x, weight, bias, stride, padding);
    }

    /** The convolution with zero input and output channels added up to the given counts, and the extra outputs dropped. */
    private static Tensor convolveOnFullBlocks(Tensor x, Tensor weight, Tensor bias, long stride, long padding, long inChannels,
                                               long outChannels) {
        long extraIn = inChannels - shape(weight)[1], extraOut = outChannels - shape(weight)[0];
        Tensor paddedWeight = torch.constant_pad_nd(weight, new long[] {0, 0, 0, 0, 0, extraIn, 0, extraOut}, new Scalar(0.0));
        Tensor paddedInput = extraIn == 0 ? x : torch.constant_pad_nd(x, new long[] {0, 0, 0, 0, 0, extraIn}, new Scalar(0.0));
        Tensor paddedBias = bias == null || extraOut == 0 ? bias : torch.constant_pad_nd(bias, new long[] {0, extraOut}, new Scalar(0.0));
        Tensor out = convolve(paddedInput, paddedWeight, paddedBias, stride, padding);
        return extraOut == 0 ? out : out.narrow(1, 0, shape(weight)[0]).contiguous();
    }

    private static long fullBlocks(long channels) {
        return (channels + CONV_CHANNEL_BLOCK - 1) / CONV_CHANNEL_BLOCK * CONV_CHANNEL_BLOCK;
    }

    /** Whether the CPU computes this in bf16 or fp16: {@code x} is, or autocast will cast it ({@link Autocast}). */
    private static boolean lowPrecisionOnCpu(Tensor x) {
        torch.ScalarType t = x.scalar_type().intern(); // JavaCPP returns an enum copy; intern() gives the constant
        return x.is_cpu() && (t == torch.ScalarType.BFloat16 || t == torch.ScalarType.Half || torch.is_autocast_enabled(torch.DeviceType.CPU));
    }

    /** oneDNN's convolution block on AVX-512 (8 on AVX2): output channel counts it handles without partial blocks. */
    private static final long CONV_CHANNEL_BLOCK = 16;

    private static boolean backpropagatesToInput(Tensor x, Tensor weight) {
        return x.requires_grad() && GradMode.is_enabled() && x.is_cpu() && shape(weight)[2] * shape(weight)[3] > 1;
    }

    private static Tensor convolve(Tensor x, Tensor weight, Tensor bias, long stride, long padding) {
        long t0 = OpClock.now();
        if (Threads.besideOthers()) {
            x = nchw(x);
            weight = nchw(weight);
        }
        Tensor out = torch.conv2d(x, weight, bias == null ? new TensorOptional() : new TensorOptional(bias),
                new long[] {stride, stride}, new long[] {padding, padding}, new long[] {1, 1}, 1);
        if (OpClock.enabled()) OpClock.add("conv2d " + shape(weight)[2] + "x" + shape(weight)[3], t0);
        return out;
    }

    /**
     * A convolution operand in NCHW memory, for a convolution computed beside another thread. oneDNN 3.7.1 (libtorch
     * 2.10's) computes channels-last convolutions with its brgemm kernels, and every build of one rewrites a
     * process-wide cache-size estimate in two steps (brg_blocking_t::L2 in jit_brgemm_conv_utils.cpp) that a build on
     * another thread reads between them: two threads then build different kernels under one primitive-cache key, and
     * one runs the other's with a scratchpad sized for its own, too small or none (the pretraining tests' side-by-side
     * parts crashed so, in brgemm_convolution_fwd_t::init_batch, 5 of 5 whole-suite runs on a Zen 5 VM). Its NCHW
     * kernels keep no such state.
     */
    private static Tensor nchw(Tensor t) {
        return t.is_contiguous() ? t : t.contiguous();
    }

    public static Tensor groupNorm(Tensor x, long groups, Tensor weight, Tensor bias, double eps) {
        long t0 = OpClock.now();
        TensorOptional w = new TensorOptional(weight), b = new TensorOptional(bias);
        Tensor out = slowOnChannelsLast(x, groups)
                ? torch.group_norm(x.contiguous(), groups, w, b, eps, false).contiguous(torch.MemoryFormat.ChannelsLast)
                : torch.group_norm(x, groups, w, b, eps, false);
        if (OpClock.enabled()) OpClock.add("group norm", t0);
        return out;
    }

    /**
     * libtorch's CPU group norm on a channels-last map of under 1,024 positions works group by group and vectorises over
     * a group's channels; with fewer of them than one 32-byte vector holds it runs scalar code, 10-20x slower than on the
     * same map stored contiguous (the VAE encoder's 16x16 maps of 64 channels in 16 groups, batch 16: 2.0 ms fp32 and
     * 2.7 ms bf16, against 0.57 and 0.37 with the two copies between the layouts). Such maps are normalised contiguous.
     */
    private static boolean slowOnChannelsLast(Tensor x, long groups) {
        if (!x.is_cpu() || x.dim() != 4 || x.is_contiguous() || !x.is_contiguous(torch.MemoryFormat.ChannelsLast)) return false;
        long[] s = shape(x);
        return s[2] * s[3] < 1024 && s[1] / groups * x.element_size() < 32;
    }

    public static Tensor layerNorm(Tensor x, Tensor weight, Tensor bias, double eps) {
        long[] normalized = {shape(x)[(int) x.dim() - 1]};
        long t0 = OpClock.now();
        Tensor out = torch.layer_norm(x, normalized, new TensorOptional(weight), new TensorOptional(bias), eps, false);
        if (OpClock.enabled()) OpClock.add("layer norm", t0);
        return out;
    }

    public static Tensor embedding(Tensor table, Tensor ids) { return torch.embedding(table, ids); }

    /**
     * softmax(q k^T * scale + mask) v over the last two dims; q, k, v are [..., tokens, headDim]; the mask, of any
     * floating type, is taken in the precision the attention computes in.
     */
    public static Tensor attention(Tensor q, Tensor k, Tensor v, Tensor additiveMask, double scale) {
        if (FlopCounter.enabled()) FlopCounter.add(4 * q.numel() * shape(k)[(int) k.dim() - 2]);
        long t0 = OpClock.now();
        // libtorch's CPU attention in bf16 ran 4x slower than in fp32 on Zen 4 (SD 1.5 UNet step at 256: 3.15 s of
        // 4.40 in attention): on the CPU it is computed in fp32, autocast paused, and handed back in the caller's precision
        torch.ScalarType type = q.scalar_type().intern();
        boolean upcast = q.is_cpu() && reduced(type);
        Tensor mask = additiveMask == null ? null : additiveMask.to(q.device(), upcast ? torch.ScalarType.Float : type);
        Tensor out = Autocast.paused(() -> torch.scaled_dot_product_attention(fp32If(upcast, q), fp32If(upcast, k), fp32If(upcast, v),
                mask == null ? new TensorOptional() : new TensorOptional(mask), 0.0, false, new DoubleOptional(scale), false));
        if (upcast) out = out.to(type);
        if (OpClock.enabled()) OpClock.add("attention", t0);
        return out;
    }

    /**
     * softmax(q k^T * scale + mask) over the last dim, the probabilities {@link #attention} weighs v with, for those who
     * look at them. In bf16 and fp16 they are computed in fp32, autocast paused, as {@link #attention} computes them
     * on the CPU (and diffusers with {@code upcast_attention}): a picture is drawn alike whether they are looked at or not.
     */
    public static Tensor attentionProbabilities(Tensor q, Tensor k, Tensor additiveMask, double scale) {
        boolean upcast = reduced(q.scalar_type().intern());
        return Autocast.paused(() -> {
            Tensor q32 = fp32If(upcast, q);
            Tensor logits = mul(matmul(q32, fp32If(upcast, k).transpose(-2, -1)), scale);
            return softmax(additiveMask == null ? logits : add(logits, additiveMask.to(q.device(), q32.scalar_type())), -1);
        });
    }

    /** bf16 or fp16: the precisions whose attention is computed in fp32. */
    private static boolean reduced(torch.ScalarType type) {
        return type == torch.ScalarType.BFloat16 || type == torch.ScalarType.Half;
    }

    private static Tensor fp32If(boolean upcast, Tensor t) {
        return upcast ? t.to(torch.ScalarType.Float) : t;
    }

    /** {@code probabilities} v, in the probabilities' precision (fp32 from bf16 or fp16 v), handed back in v's: as {@link #attention}. */
    public static Tensor weigh(Tensor probabilities, Tensor v) {
        torch.ScalarType type = v.scalar_type().intern();
        if (probabilities.scalar_type().intern() == type) return matmul(probabilities, v);
        return Autocast.paused(() -> matmul(probabilities, v.to(probabilities.scalar_type()))).to(type);
    }

    public static Tensor upsampleNearest2x(Tensor x) {
        long[] s = shape(x);
        return torch.upsample_nearest2d(x, new long[] {s[2] * 2, s[3] * 2});
    }

    /** Zero padding of the last two dims: left, right, top, bottom. */
    public static Tensor pad2d(Tensor x, long left, long right, long top, long bottom) {
        return torch.constant_pad_nd(x, new long[] {left, right, top, bottom}, new Scalar(0.0));
    }

    public static Tensor maxPool2d(Tensor x, long kernel) {
        return torch.max_pool2d(x, new long[] {kernel, kernel}, new long[] {kernel, kernel}, new long[] {0, 0}, new long[] {1, 1}, false);
    }

    public static Tensor avgPool2d(Tensor x, long kernel) {
        return torch.avg_pool2d(x, new long[] {kernel, kernel}, new long[] {kernel, kernel}, new long[] {0, 0},
                false, true, new org.bytedeco.pytorch.LongOptional());
    }

    // ---- shapes -------------------------------------------------------------------------------

    public static Tensor reshape(Tensor x, long... shape) { return x.reshape(shape); }
    public static Tensor permute(Tensor x, long... dims) { return x.permute(dims); }
    public static Tensor transpose(Tensor x, long a, long b) { return x.transpose(a, b); }
    public static Tensor narrow(Tensor x, long dim, long start, long length) { return x.narrow(dim, start, length); }

    public static Tensor cat(List<Tensor> parts, long dim) {
        try (TensorVector v = new TensorVector(parts.toArray(new Tensor[0]))) {
            return torch.cat(v, dim);
        }
    }

    public static Tensor cat(long dim, Tensor... parts) { return cat(Arrays.asList(parts), dim); }

    public static Tensor stack(List<Tensor> parts, long dim) {
        try (TensorVector v = new TensorVector(parts.toArray(new Tensor[0]))) {
            return torch.stack(v, dim);
        }
    }

    /** Splits {@code x} into {@code n} equal chunks along {@code dim}. */
    public static Tensor[] chunk(Tensor x, int n, long dim) {
        try (TensorVector v = x.chunk(n, dim)) {
            Tensor[] out = new Tensor[(int) v.size()];
            // owned copies: get(i) points into the vector, which is freed when closed (or collected)
            for (int i = 0; i < out.length; i++) out[i] = new Tensor(v.get(i));
            return out;
        }
    }

    public static Tensor flipWidth(Tensor x) { return x.flip(x.dim() - 1); }

    // ---- comparison, for tests and diagnostics -----------------------------------------------

    public static double maxAbsDiff(Tensor a, Tensor b) {
        return item(a.to(torch.ScalarType.Double).sub(b.to(torch.ScalarType.Double)).abs().max());
    }

    public static double maxAbs(Tensor a) { return item(a.to(torch.ScalarType.Double).abs().max()); }
}
