package dev.perfusion.pretrain;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import static dev.perfusion.pretrain.BaseModelRecipe.Localization.GAP;
import static dev.perfusion.pretrain.BaseModelRecipe.Localization.SHARE;

import dev.perfusion.pretrain.BaseModelRecipe.Localization;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.world.Accessory;
import dev.perfusion.world.Category;
import dev.perfusion.world.ColorWord;
import dev.perfusion.world.Instance;
import dev.perfusion.world.Labels;
import dev.perfusion.world.Pattern;
import dev.perfusion.world.Placement;
import dev.perfusion.world.Pose;
import dev.perfusion.world.Scene;
import dev.perfusion.world.SceneSpec;
import dev.perfusion.world.Size;
import dev.perfusion.world.WorldTokenizer;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class AttentionLocalizationTest {
    private static final ClipTokenizer TOKENIZER = WorldTokenizer.create(24);
    private static final Instance CAR = Instance.random(Category.CAR, 1), TREE = Instance.random(Category.TREE, 2), CAT = Instance.random(Category.CAT, 3),
            OTHER_CAT = Instance.random(Category.CAT, 4);

    private static Labels pair(Instance left, Instance right) {
        return new Labels(SceneSpec.pair(left, right, Scene.GRASS, Size.MEDIUM), Pose.NEUTRAL, Pose.NEUTRAL);
    }

    private static Labels single(Instance inst) {
        return new Labels(SceneSpec.single(inst, Scene.GRASS, Placement.LEFT, Size.MEDIUM), Pose.NEUTRAL, null);
    }

    /** The positions naming object {@code o} in row {@code r}. */
    private static List<Integer> named(Tensor naming, int r, int o) {
        float[] v = Ops.toFloats(naming.select(0, r).select(1, o));
        List<Integer> out = new ArrayList<>();
        for (int t = 0; t < v.length; t++) if (v[t] == 1) out.add(t);
        return out;
    }

    @Test
    void namesEachObjectsColourAndClassWordsAndNothingElse() {
        String carWords = CAR.color().word() + " car", treeWords = TREE.color().word() + " tree";
        String pairCaption = "a " + carWords + " next to a " + treeWords + " on the grass"; // BOS a COLOUR car next to a COLOUR tree ...
        String sameClass = "a " + CAT.color().word() + " cat on the left and a " + OTHER_CAT.color().word() + " cat on the right on the grass";
        try (Scope s = Scope.open()) {
            Tensor naming = AttentionLocalization.namingTokens(TOKENIZER, List.of(pairCaption, sameClass, "a cat on the grass", ""),
                    List.of(pair(CAR, TREE), pair(CAT, OTHER_CAT), single(CAT), single(CAT)), false);
            org.junit.jupiter.api.Assertions.assertArrayEquals(new long[] {4, 24, 2}, Ops.shape(naming));
            assertEquals(List.of(2, 3), named(naming, 0, 0), "the car's colour and class");
            assertEquals(List.of(7, 8), named(naming, 0, 1), "the tree's");
            assertEquals(List.of(2, 3), named(naming, 1, 0), "the first cat is the primary object");
            assertEquals(List.of(9, 10), named(naming, 1, 1), "the last cat the second");
            assertEquals(List.of(2), named(naming, 2, 0), "a loose caption without the colour names the class only");
            assertEquals(List.of(), named(naming, 2, 1));
            assertEquals(0.0, Ops.item(naming.select(0, 3).sum()), "an empty caption names nothing");
        }
    }

    /** With localized details the pattern adjective and the coloured accessory name their object too; without, they do not. */
    @Test
    void localizedDetailsNameThePatternAndTheColouredAccessory() {
        ClipTokenizer detailed = WorldTokenizer.create(24, true);
        Instance teddy = Instance.of(Category.TEDDY, 5, ColorWord.BROWN, ColorWord.WHITE, Pattern.SPOTS, Accessory.BOW, ColorWord.BLUE, 0);
        // BOS a spotted brown teddy with a blue bow on the grass
        List<String> captions = List.of("a spotted brown teddy with a blue bow on the grass", "a brown teddy on the grass");
        List<Labels> labels = List.of(single(teddy), single(teddy));
        try (Scope s = Scope.open()) {
            Tensor plain = AttentionLocalization.namingTokens(detailed, captions, labels, false);
            Tensor withDetails = AttentionLocalization.namingTokens(detailed, captions, labels, true);
            assertEquals(List.of(3, 4), named(plain, 0, 0), "colour and class only");
            assertEquals(List.of(2, 3, 4, 7, 8), named(withDetails, 0, 0), "and the pattern, the accessory's colour and the accessory");
            assertEquals(List.of(), named(withDetails, 0, 1));
            assertEquals(List.of(2, 3), named(withDetails, 1, 0), "a caption without details names what it names");
        }
    }

    @Test
    void gapIsTheMeanOutsideMinusTheMeanInsideAndShareTheScaledMapsShareOutside() {
        try (Scope s = Scope.open()) {
            // one picture of 4x4 pixels (one layer, one head); the object is the left half; token 1 names it
            float[] mask = new float[2 * 16];
            for (int y = 0; y < 4; y++) for (int x = 0; x < 2; x++) mask[y * 4 + x] = 1;
            Tensor masks = Ops.fromFloats(mask, 1, 2, 4, 4);
            float[] naming = new float[3 * 2];
            naming[1 * 2] = 1;
            Tensor named = Ops.fromFloats(naming, 1, 3, 2);

            assertEquals(0.0, lossOf(SHARE, tokenOneReadOnTheLeft(0.1), masks, named), 1e-6, "read only inside, however little");
            assertEquals(1.0, lossOf(SHARE, tokenOneReadOnTheLeft(0.0), masks, named), 1e-6, "read only outside");
            assertEquals(0.5, lossOf(SHARE, uniform(1, 16, 3), masks, named), 1e-6, "read everywhere alike: the outside's area");

            assertEquals(-0.1, lossOf(GAP, tokenOneReadOnTheLeft(0.1), masks, named), 1e-6, "0 outside - 0.1 inside: more inside is better");
            assertEquals(-1.0, lossOf(GAP, tokenOneReadOnTheLeft(1.0), masks, named), 1e-6, "0 outside - 1 inside");
            assertEquals(1.0, lossOf(GAP, tokenOneReadOnTheLeft(0.0), masks, named), 1e-6, "1 outside - 0 inside");
            assertEquals(0.0, lossOf(GAP, uniform(1, 16, 3), masks, named), 1e-6, "read everywhere alike");
        }
    }

    @ParameterizedTest
    @EnumSource(Localization.class)
    void partsOfABatchAddUpToTheWholeBatch(Localization form) {
        try (Scope s = Scope.open()) {
            Tensor masks = Ops.fromFloats(randomFloats(4 * 2 * 64, 7), 4, 2, 8, 8);
            Tensor naming = Ops.fromFloats(new float[] {0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0}, 4, 2, 2);
            List<Tensor> layers = List.of(Ops.softmax(Ops.fromFloats(randomFloats(4 * 2 * 64 * 2, 8), 4, 2, 64, 2), -1),
                    Ops.softmax(Ops.fromFloats(randomFloats(4 * 2 * 16 * 2, 9), 4, 2, 16, 2), -1));
            double named = Ops.item(naming.sum());
            double whole = Ops.item(AttentionLocalization.loss(form, layers, masks, naming, named));
            double parts = 0;
            for (int from = 0; from < 4; from += 2) {
                final int f = from;
                parts += Ops.item(AttentionLocalization.loss(form, layers.stream().map(p -> p.narrow(0, f, 2)).toList(), masks.narrow(0, f, 2), naming.narrow(0, f, 2), named));
            }
            assertEquals(whole, parts, 1e-6);
            assertTrue(Math.abs(whole) > 1e-4, "a loss that could be told apart from zero: " + whole);
        }
    }

    private static double lossOf(Localization form, Tensor probabilities, Tensor masks, Tensor naming) {
        return Ops.item(AttentionLocalization.loss(form, List.of(probabilities), masks, naming, Ops.item(naming.sum())));
    }

    /** [1, 1, 16, 3]: token 1 takes {@code share} of each left-half pixel's attention, and of each right-half pixel's 1 - 10 share (0 from 0.1 up). */
    private static Tensor tokenOneReadOnTheLeft(double share) {
        float[] p = new float[16 * 3];
        for (int q = 0; q < 16; q++) {
            boolean left = q % 4 < 2;
            float one = (float) (left ? share : Math.max(0, 1 - 10 * share));
            p[q * 3 + 1] = one;
            p[q * 3] = 1 - one;
        }
        return Ops.fromFloats(p, 1, 1, 16, 3);
    }

    private static Tensor uniform(int rows, int queries, int tokens) {
        return Ops.div(Ops.ones(rows, 1, queries, tokens), tokens);
    }

    private static float[] randomFloats(int n, long seed) {
        java.util.SplittableRandom rng = new java.util.SplittableRandom(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) rng.nextDouble();
        return v;
    }
}
