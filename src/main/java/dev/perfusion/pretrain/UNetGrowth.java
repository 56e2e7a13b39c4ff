package dev.perfusion.pretrain;

import dev.perfusion.io.StateDict;
import dev.perfusion.nn.Param;
import dev.perfusion.nn.Weights;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.unet.UNet2DConditionModel;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.BiConsumer;
import java.util.function.UnaryOperator;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A trained UNet made deeper without changing what it computes, so that training goes on from what it draws with
 * room for what it could not hold. Each level gains resnets (each with its attention where the level has one) that
 * start as the identity: their last convolution and the attention's output projection are zero. A down block's new
 * layers come after its old ones, so its extra skip connections repeat its last old one; an up block takes the skips
 * in reverse, so its new layers stand right after its first, each reading one repeated skip, which its shortcut
 * convolution leaves out: it passes the block's own input on, [I | 0].
 */
final class UNetGrowth {
    private static final Pattern LAYER = Pattern.compile("^(down_blocks|up_blocks)\\.(\\d+)\\.(resnets|attentions)\\.(\\d+)\\.(.+)$");

    private UNetGrowth() {}

    /**
     * Loads {@code shallower}, a UNet of {@code shallowerLayers} resnets per level, into {@code deeper}, a UNet of the same
     * shapes with more; the new layers are initialised from {@code seed} and then made the identity.
     */
    static void load(UNet2DConditionModel deeper, StateDict shallower, int shallowerLayers, String what, long seed) {
        int deeperLayers = deeper.config().layersPerBlock();
        if (deeperLayers <= shallowerLayers) {
            throw new IllegalArgumentException("cannot deepen the " + what + " from " + shallowerLayers + " to " + deeperLayers + " layers per level");
        }
        Weights.initRandom(deeper, seed);
        loadInPlaces(deeper, shallower, name -> shallowerName(name, shallowerLayers, deeperLayers), UNetGrowth::startAsIdentity,
                "cannot deepen the " + what + " (" + shallowerLayers + " -> " + deeperLayers + " layers per level)");
    }

    /**
     * Sets each weight of {@code grown} to {@code trained}'s weight of the name {@code place} gives it, or, where that is
     * null (a new layer's weight), by {@code startNew}; every trained weight must find its place, of its shape, or the
     * error begins with {@code cannot}.
     */
    static void loadInPlaces(UNet2DConditionModel grown, StateDict trained, UnaryOperator<String> place, BiConsumer<String, Param> startNew, String cannot) {
        Set<String> used = new HashSet<>();
        List<String> misfits = new ArrayList<>();
        for (Map.Entry<String, Param> e : grown.namedParameters().entrySet()) {
            String from = place.apply(e.getKey());
            Param p = e.getValue();
            if (from == null) {
                startNew.accept(e.getKey(), p);
            } else if (!trained.has(from) || !Arrays.equals(trained.shape(from), p.shape())) {
                misfits.add(from + (trained.has(from) ? " has shape " + Arrays.toString(trained.shape(from)) + ", expected " + Arrays.toString(p.shape()) : " is missing"));
            } else {
                try (Scope s = Scope.inference()) {
                    p.set(trained.get(from).to(p.t().device(), p.t().scalar_type()));
                }
                used.add(from);
            }
        }
        for (String key : trained.keys()) if (!used.contains(key)) misfits.add(trained.describe(key) + " has no place in the grown UNet");
        if (!misfits.isEmpty()) {
            throw new IllegalArgumentException(cannot + ": " + String.join("; ", misfits.subList(0, Math.min(5, misfits.size())))
                    + (misfits.size() > 5 ? "; and " + (misfits.size() - 5) + " more" : ""));
        }
    }

    /**
     * The shallower UNet's name of a deeper UNet's weight, or null for a weight of a new layer: down blocks keep their
     * first layers; an up block keeps its first, then its new ones follow, then its other old ones.
     */
    static String shallowerName(String name, int shallowerLayers, int deeperLayers) {
        Matcher m = LAYER.matcher(name);
        if (!m.matches()) return name;
        int layer = Integer.parseInt(m.group(4)), added = deeperLayers - shallowerLayers;
        int old;
        if (m.group(1).equals("down_blocks")) old = layer < shallowerLayers ? layer : -1;
        else old = layer == 0 ? 0 : layer <= added ? -1 : layer - added;
        return old < 0 ? null : m.group(1) + "." + m.group(2) + "." + m.group(3) + "." + old + "." + m.group(5);
    }

    /** A new layer's weight, set so that the layer passes its input on. */
    static void startAsIdentity(String name, Param p) {
        try (Scope s = Scope.inference()) {
            if (name.matches(".*\\.resnets\\.\\d+\\.conv2\\.(weight|bias)") || name.matches(".*\\.attentions\\.\\d+\\.proj_out\\.(weight|bias)")
                    || name.matches(".*\\.resnets\\.\\d+\\.conv_shortcut\\.bias")) {
                p.set(Ops.zerosLike(p.t()));
            } else if (name.matches(".*\\.resnets\\.\\d+\\.conv_shortcut\\.weight")) {
                long[] shape = p.shape(); // [out, in = out + skip, 1, 1]: the block's input passed on, the skip left out
                float[] passOn = new float[(int) (shape[0] * shape[1])];
                for (int o = 0; o < shape[0]; o++) passOn[(int) (o * shape[1] + o)] = 1;
                p.set(Ops.fromFloats(passOn, shape).to(p.t().device(), p.t().scalar_type()));
            }
        }
    }
}
