package dev.perfusion.pretrain;

import dev.perfusion.io.StateDict;
import dev.perfusion.nn.Param;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.unet.UNet2DConditionModel;
import dev.perfusion.unet.UNetConfig;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * A trained UNet made k times wider without changing what it computes (Net2WiderNet, Chen et al. 2016), so that
 * training goes on from what it draws with k² times the weights per layer. Every channel of every level, of the time
 * embedding and of the feed-forward layers is repeated k times, side by side; a layer that reads repeated channels
 * divides each of its weights among the copies at random shares that sum to 1, so the copies compute the same at the
 * start and learn apart from the first step (equal shares would keep them equal for ever).
 *
 * <p>Three things keep the function exactly: GroupNorm keeps its group count, so each group holds the copies of its
 * old channels and has their mean and variance (LayerNorm too, over all channels); each query is scaled by 1/√k,
 * because a head's dot products now sum over k copies of each of its dimensions; and the time embedding's sinusoid,
 * k times as long, holds the old frequencies at every k-th place (with diffusers' frequency shift 0), where linear_1
 * reads them as before, and reads the new ones with weights that start at zero.
 */
final class UNetWidening {
    private static final String SINUSOID_READER = "time_embedding.linear_1.weight";

    private UNetWidening() {}

    /** Loads {@code narrower}'s weights into {@code wider}, whose channels are {@code factor} times theirs everywhere. */
    static void load(UNet2DConditionModel wider, StateDict narrower, int factor, String what, long seed) {
        if (factor < 2) throw new IllegalArgumentException("cannot widen the " + what + " by " + factor + ": expected a factor of at least 2");
        UNetConfig c = wider.config();
        if (c.freqShift() != 0) {
            throw new IllegalArgumentException("cannot widen the " + what + ": its time embedding's frequency shift is " + c.freqShift()
                    + ", so the wider sinusoid would not hold its frequencies (expected 0)");
        }
        SplittableRandom rng = new SplittableRandom(seed);
        Set<String> used = new HashSet<>();
        List<String> misfits = new ArrayList<>();
        for (Map.Entry<String, Param> e : wider.namedParameters().entrySet()) {
            String name = e.getKey();
            Param p = e.getValue();
            if (!narrower.has(name)) {
                misfits.add(name + " is missing");
                continue;
            }
            long[] from = narrower.shape(name), to = p.shape();
            boolean fits = from.length == to.length;
            for (int d = 0; fits && d < from.length; d++) fits = to[d] == from[d] || d < 2 && to[d] == factor * from[d];
            if (!fits) {
                misfits.add(narrower.describe(name) + " does not widen " + factor + "x to " + Arrays.toString(to));
                continue;
            }
            float[] old;
            try (Scope s = Scope.inference()) {
                old = Ops.toFloats(narrower.get(name).to(org.bytedeco.pytorch.global.torch.ScalarType.Float).contiguous());
            }
            float[] widened = widened(name, old, from, to, factor, rng);
            if (name.matches(".*\\.attn\\d\\.to_q\\.weight")) {
                float scale = (float) (1 / Math.sqrt(factor));
                for (int i = 0; i < widened.length; i++) widened[i] *= scale;
            }
            try (Scope s = Scope.inference()) {
                p.set(Ops.fromFloats(widened, to)); // fp32 on the CPU, as the stage builds and trains it
            }
            used.add(name);
        }
        for (String key : narrower.keys()) if (!used.contains(key)) misfits.add(narrower.describe(key) + " has no place in the wider UNet");
        if (!misfits.isEmpty()) {
            throw new IllegalArgumentException("cannot widen the " + what + " " + factor + "x: "
                    + String.join("; ", misfits.subList(0, Math.min(5, misfits.size()))) + (misfits.size() > 5 ? "; and " + (misfits.size() - 5) + " more" : ""));
        }
    }

    /**
     * One weight widened: its first dimension (what the layer writes) repeated where it grew; its second (what it
     * reads) repeated with random shares summing to 1, or, for the sinusoid's reader, at every k-th place.
     */
    static float[] widened(String name, float[] old, long[] from, long[] to, int factor, SplittableRandom rng) {
        int outOld = (int) from[0], outNew = (int) to[0];
        int inOld = from.length > 1 ? (int) from[1] : 1, inNew = to.length > 1 ? (int) to[1] : 1;
        int kernel = 1;
        for (int d = 2; d < from.length; d++) kernel *= (int) from[d];
        int outCopies = outNew / outOld, inCopies = inNew / inOld;
        float[] out = new float[outNew * inNew * kernel];
        boolean sinusoid = name.equals(SINUSOID_READER) && inCopies > 1;
        float[] shares = new float[inCopies];
        for (int o = 0; o < outOld; o++) {
            for (int i = 0; i < inOld; i++) {
                for (int q = 0; q < kernel; q++) {
                    float w = old[(o * inOld + i) * kernel + q];
                    for (int a = 0; a < outCopies; a++) {
                        int row = (o * outCopies + a) * inNew;
                        if (sinusoid) {
                            out[(row + sinusoidPlace(i, inOld, factor)) * kernel + q] = w;
                        } else {
                            if (a == 0) shares(shares, rng); // the copies of an output read their input alike: they start equal
                            for (int c = 0; c < inCopies; c++) out[(row + i * inCopies + c) * kernel + q] = w * shares[c];
                        }
                    }
                }
            }
        }
        return out;
    }

    /** Random shares summing to 1, each between a third of and three times another. */
    private static void shares(float[] shares, SplittableRandom rng) {
        if (shares.length == 1) {
            shares[0] = 1;
            return;
        }
        double sum = 0;
        for (int c = 0; c < shares.length; c++) sum += shares[c] = (float) (0.5 + rng.nextDouble());
        for (int c = 0; c < shares.length; c++) shares[c] /= (float) sum;
    }

    /** Where feature {@code i} of a sinusoid of {@code features} ([cos | sin] halves) stands in one {@code factor} times as long. */
    static int sinusoidPlace(int i, int features, int factor) {
        int half = features / 2;
        return i < half ? factor * i : factor * half + factor * (i - half);
    }
}
