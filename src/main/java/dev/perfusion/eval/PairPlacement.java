package dev.perfusion.eval;

import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.util.Progress;
import dev.perfusion.world.Category;
import dev.perfusion.world.ColorWord;
import dev.perfusion.world.Sample;
import dev.perfusion.world.Scene;
import dev.perfusion.world.SceneSpec;
import dev.perfusion.world.Size;
import dev.perfusion.world.WorldGenerator;
import org.bytedeco.pytorch.Tensor;

import static dev.perfusion.eval.AttributeClassifier.Attribute.CATEGORY;
import static dev.perfusion.eval.AttributeClassifier.Attribute.COLOUR;

import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Whether a model puts two objects on the sides its prompt names, as the two-concept evaluation asks of it: for
 * random pairs of categories and scenes, "a A on the left and a B on the right SCENE". Each half's category is read
 * by the attribute classifier. Then whether it paints each colour on its own object: as many pairs again with two
 * contrasting colours, "a C A on the left and a D B on the right SCENE", each half's colour read by the same judge.
 * The same judge on the renderer's pictures of the same pairs gives its ceiling.
 */
public final class PairPlacement {
    private PairPlacement() {}

    /**
     * Fractions of the pictures with A read on the left and B on the right ({@code onTheirSides}), and with the two
     * swapped ({@code swapped}); the same for the renders of the pairs.
     */
    public record Result(int pictures, double onTheirSides, double swapped, double renderedOnTheirSides, double renderedSwapped, Colours colours) {
        public String summary() {
            return String.format(Locale.ROOT, "two objects on their prompted sides (\"a A on the left and a B on the right ...\", %d pictures): "
                    + "%.1f%%, swapped %.1f%%; the judge on rendered pairs: %.1f%%, swapped %.1f%%",
                    pictures, 100 * onTheirSides, 100 * swapped, 100 * renderedOnTheirSides, 100 * renderedSwapped)
                    + "\n" + colours.summary(pictures);
        }
    }

    /**
     * Fractions of the colour pairs' pictures that show both objects each in its own colour, on whichever sides
     * ({@code onTheirObjects}), both with the colours traded, and one of the two colours on both halves (one object's
     * colour painted over the other); the same for the renders.
     */
    public record Colours(double onTheirObjects, double traded, double oneOnBoth, double renderedOnTheirObjects, double renderedOneOnBoth) {
        String summary(int pictures) {
            return String.format(Locale.ROOT, "each colour on its own object (\"a C A on the left and a D B on the right ...\", %d pictures, "
                    + "either side): %.1f%%, the colours traded %.1f%%, one of the colours on both %.1f%%; the judge on rendered pairs: %.1f%%, "
                    + "one on both %.1f%%", pictures, 100 * onTheirObjects, 100 * traded, 100 * oneOnBoth, 100 * renderedOnTheirObjects, 100 * renderedOneOnBoth);
        }
    }

    /** "a FIRST on the left and a SECOND on the right SCENE", or with the two sides the other way round. */
    static String sidedPrompt(String first, String second, boolean firstOnLeft, Scene scene) {
        return "a " + first + " on the " + (firstOnLeft ? "left" : "right") + " and a " + second + " on the "
                + (firstOnLeft ? "right" : "left") + " " + scene.phrase();
    }

    /** A pair of categories on their sides in a scene, with a colour for each (or none), and its prompt. */
    record Pair(Category left, Category right, Scene scene, ColorWord leftColour, ColorWord rightColour) {
        Pair(Category left, Category right, Scene scene) {
            this(left, right, scene, null, null);
        }

        String prompt() {
            return sidedPrompt(named(leftColour, left), named(rightColour, right), true, scene);
        }

        private static String named(ColorWord colour, Category category) {
            return (colour != null ? colour.word() + " " : "") + category.word();
        }
    }

    public static Result measure(StableDiffusion sd, AttributeClassifier judge, int count, int steps, double guidance, double sideSteering, long seed,
                                 Progress progress) {
        WorldGenerator world = new WorldGenerator();
        SplittableRandom rng = new SplittableRandom(seed);
        List<Pair> pairs = new ArrayList<>(), coloured = new ArrayList<>();
        List<Sample> rendered = new ArrayList<>(), renderedColoured = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            Category a = pick(rng, Category.values()), b;
            do b = pick(rng, Category.values()); while (b == a);
            Pair p = new Pair(a, b, pick(rng, Scene.values()));
            pairs.add(p);
            rendered.add(world.render(SceneSpec.pair(WorldGenerator.trainingInstance(a, rng), WorldGenerator.trainingInstance(b, rng),
                    p.scene(), Size.SMALL), rng.nextLong()));
        }
        for (int i = 0; i < count; i++) {
            Category a = pick(rng, Category.values()), b;
            ColorWord c = pick(rng, a.colors().toArray(ColorWord[]::new));
            ColorWord[] contrasting;
            do {
                b = pick(rng, Category.values());
                contrasting = b.colors().stream().filter(colour -> !colour.similar(c)).toArray(ColorWord[]::new);
            } while (b == a || contrasting.length == 0);
            Pair p = new Pair(a, b, pick(rng, Scene.values()), c, pick(rng, contrasting));
            coloured.add(p);
            renderedColoured.add(world.render(SceneSpec.pair(WorldGenerator.trainingInstance(a, c, rng), WorldGenerator.trainingInstance(b, p.rightColour(), rng),
                    p.scene(), Size.SMALL), rng.nextLong()));
        }
        List<BufferedImage> generated = PromptFollowing.sample(sd, pairs.stream().map(Pair::prompt).toList(), steps, guidance, sideSteering, seed,
                "sampling pair prompts", progress);
        List<BufferedImage> generatedColoured = PromptFollowing.sample(sd, coloured.stream().map(Pair::prompt).toList(), steps, guidance, sideSteering, seed + 1,
                "sampling coloured pair prompts", progress);
        try (Scope s = Scope.inference()) {
            int[] generatedCounts = judge(judge, AttributeClassifier.picturesOf(generated), pairs);
            int[] renderedCounts = judge(judge, AttributeClassifier.pictures(rendered), pairs);
            int[] colourCounts = judgeColours(judge, AttributeClassifier.picturesOf(generatedColoured), coloured);
            int[] renderedColourCounts = judgeColours(judge, AttributeClassifier.pictures(renderedColoured), coloured);
            double n = count;
            return new Result(count, generatedCounts[0] / n, generatedCounts[1] / n, renderedCounts[0] / n, renderedCounts[1] / n,
                    new Colours(colourCounts[0] / n, colourCounts[1] / n, colourCounts[2] / n, renderedColourCounts[0] / n, renderedColourCounts[2] / n));
        }
    }

    /** How many pictures show the pair on its sides, and how many swapped. */
    static int[] judge(AttributeClassifier judge, Tensor pictures, List<Pair> pairs) {
        Halves read = Halves.read(judge, pictures);
        int onSides = 0, swapped = 0;
        for (int i = 0; i < pairs.size(); i++) {
            int a = pairs.get(i).left().ordinal(), b = pairs.get(i).right().ordinal();
            if (read.left(CATEGORY)[i] == a && read.right(CATEGORY)[i] == b) onSides++;
            if (read.left(CATEGORY)[i] == b && read.right(CATEGORY)[i] == a) swapped++;
        }
        return new int[] {onSides, swapped};
    }

    /**
     * How many pictures show both objects, each in its own colour, on whichever sides; how many show both with the
     * colours traded; and how many show one of the two colours on both halves.
     */
    static int[] judgeColours(AttributeClassifier judge, Tensor pictures, List<Pair> pairs) {
        Halves read = Halves.read(judge, pictures);
        int own = 0, traded = 0, oneOnBoth = 0;
        for (int i = 0; i < pairs.size(); i++) {
            Pair p = pairs.get(i);
            long[] first = {p.left().ordinal(), p.leftColour().ordinal()}, second = {p.right().ordinal(), p.rightColour().ordinal()};
            long[] left = {read.left(CATEGORY)[i], read.left(COLOUR)[i]}, right = {read.right(CATEGORY)[i], read.right(COLOUR)[i]};
            if (onEitherSide(left, right, first, second)) own++;
            if (onEitherSide(left, right, new long[] {first[0], second[1]}, new long[] {second[0], first[1]})) traded++;
            if (left[1] == right[1] && (left[1] == first[1] || left[1] == second[1])) oneOnBoth++;
        }
        return new int[] {own, traded, oneOnBoth};
    }

    /** Whether the two halves read x and y, in either order. */
    private static boolean onEitherSide(long[] left, long[] right, long[] x, long[] y) {
        return Arrays.equals(left, x) && Arrays.equals(right, y) || Arrays.equals(left, y) && Arrays.equals(right, x);
    }

    /**
     * What the classifier reads on each half. It reads one object at a time: a half, mirrored onto the other half,
     * is a picture of that object twice.
     */
    private record Halves(Map<AttributeClassifier.Attribute, long[]> leftRead, Map<AttributeClassifier.Attribute, long[]> rightRead) {
        static Halves read(AttributeClassifier judge, Tensor pictures) {
            long width = Ops.shape(pictures)[3], half = width / 2;
            Tensor leftHalf = pictures.narrow(3, 0, half), rightHalf = pictures.narrow(3, width - half, half);
            return new Halves(judge.predict(Ops.cat(3, leftHalf, leftHalf.flip(new long[] {3}))),
                    judge.predict(Ops.cat(3, rightHalf.flip(new long[] {3}), rightHalf)));
        }

        long[] left(AttributeClassifier.Attribute a) { return leftRead.get(a); }
        long[] right(AttributeClassifier.Attribute a) { return rightRead.get(a); }
    }

    private static <T> T pick(SplittableRandom rng, T[] options) {
        return options[rng.nextInt(options.length)];
    }
}
