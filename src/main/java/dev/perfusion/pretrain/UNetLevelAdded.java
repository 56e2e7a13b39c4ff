package dev.perfusion.pretrain;

import dev.perfusion.io.StateDict;
import dev.perfusion.nn.Param;
import dev.perfusion.nn.Weights;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.unet.UNet2DConditionModel;

import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A trained UNet given a level more at the bottom, for latents larger than it learned on: a UNet trained on 16x16
 * latents and continued on 32x32 ones sees each object at twice the size in its deepest cells, and draws some twice.
 * Every old weight keeps its place (the up blocks move one down, behind the new deepest one; the mid block runs on the
 * new level), and the new layers start so that the UNet computes nearly what it did: the new downsampler averages
 * each 2x2 cell, the new upsampler's convolution passes on, the new resnets and attentions are identities (as
 * {@link UNetGrowth}'s). What changes is that the mid block now reads the averaged map and its output is repeated
 * over each 2x2 cell.
 */
final class UNetLevelAdded {
    private static final Pattern BLOCK = Pattern.compile("^(down_blocks|up_blocks)\\.(\\d+)\\.(.+)$");

    private UNetLevelAdded() {}

    /** Loads {@code shallower}, a UNet of {@code shallowerLevels} levels, into {@code deeper}, which has one more of the deepest level's width. */
    static void load(UNet2DConditionModel deeper, StateDict shallower, int shallowerLevels, String what, long seed) {
        List<Integer> channels = deeper.config().blockOutChannels();
        if (channels.size() != shallowerLevels + 1 || !channels.get(shallowerLevels).equals(channels.get(shallowerLevels - 1))) {
            throw new IllegalArgumentException("cannot add a level to the " + what + " of " + shallowerLevels + " levels: the new UNet's channels "
                    + channels + " must be its own with the deepest repeated once more");
        }
        Weights.initRandom(deeper, seed);
        UNetGrowth.loadInPlaces(deeper, shallower, name -> shallowerName(name, shallowerLevels), UNetLevelAdded::startNearIdentity,
                "cannot add a level to the " + what);
    }

    /**
     * The shallower UNet's name of a weight of the UNet with a level more, or null for a new weight: the new deepest
     * down block, the old deepest one's new downsampler and attentions (it had neither), the new deepest up block and
     * the attentions of the up block after it (the old deepest up block had none); the other up blocks one place on.
     */
    static String shallowerName(String name, int shallowerLevels) {
        Matcher m = BLOCK.matcher(name);
        if (!m.matches()) return name;
        int block = Integer.parseInt(m.group(2));
        String rest = m.group(3);
        if (m.group(1).equals("down_blocks")) {
            if (block == shallowerLevels) return null;
            if (block == shallowerLevels - 1 && (rest.startsWith("downsamplers.") || rest.startsWith("attentions."))) return null;
            return name;
        }
        if (block == 0 || (block == 1 && rest.startsWith("attentions."))) return null;
        return "up_blocks." + (block - 1) + "." + rest;
    }

    /** A new weight, set so that its layer passes its input on ({@link UNetGrowth}'s), or averages it over 2x2 cells where it halves it. */
    private static void startNearIdentity(String name, Param p) {
        try (Scope s = Scope.inference()) {
            if (name.matches(".*\\.(downsamplers|upsamplers)\\.0\\.conv\\.bias")) {
                p.set(Ops.zerosLike(p.t()));
            } else if (name.endsWith("downsamplers.0.conv.weight")) {
                // stride 2, padding 1: output (y, x) reads rows and columns 2y-1 .. 2y+1, so taps 1 and 2 cover its own 2x2 cell
                p.set(kernel(p, (o, i, y, x) -> o == i && y >= 1 && x >= 1 ? 0.25f : 0));
            } else if (name.endsWith("upsamplers.0.conv.weight")) {
                p.set(kernel(p, (o, i, y, x) -> o == i && y == 1 && x == 1 ? 1 : 0)); // after the nearest-neighbour doubling
            } else {
                UNetGrowth.startAsIdentity(name, p);
            }
        }
    }

    private interface Tap {
        float at(int out, int in, int y, int x);
    }

    private static org.bytedeco.pytorch.Tensor kernel(Param p, Tap tap) {
        long[] shape = p.shape();
        int out = (int) shape[0], in = (int) shape[1], h = (int) shape[2], w = (int) shape[3];
        float[] v = new float[out * in * h * w];
        for (int o = 0; o < out; o++) for (int i = 0; i < in; i++) for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) {
            v[((o * in + i) * h + y) * w + x] = tap.at(o, i, y, x);
        }
        return Ops.fromFloats(v, shape).to(p.t().device(), p.t().scalar_type());
    }
}
