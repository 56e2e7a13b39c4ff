package dev.perfusion.eval;

import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.util.Progress;
import dev.perfusion.world.Category;
import dev.perfusion.world.Sample;
import dev.perfusion.world.Scene;
import dev.perfusion.world.SceneSpec;
import dev.perfusion.world.Size;
import dev.perfusion.world.WorldGenerator;
import org.bytedeco.pytorch.Tensor;

import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Whether a model puts two objects on the sides its prompt names, as the two-concept evaluation asks of it: for
 * random pairs of categories and scenes, "a A on the left and a B on the right SCENE". Each half's category is read
 * by the attribute classifier. The same judge on the renderer's pictures of the same pairs gives its ceiling.
 */
public final class PairPlacement {
    private PairPlacement() {}

    /**
     * Fractions of the pictures with A read on the left and B on the right ({@code onTheirSides}), and with the two
     * swapped ({@code swapped}); the same for the renders of the pairs.
     */
    public record Result(int pictures, double onTheirSides, double swapped, double renderedOnTheirSides, double renderedSwapped) {
        public String summary() {
            return String.format(Locale.ROOT, "two objects on their prompted sides (\"a A on the left and a B on the right ...\", %d pictures): "
                    + "%.1f%%, swapped %.1f%%; the judge on rendered pairs: %.1f%%, swapped %.1f%%",
                    pictures, 100 * onTheirSides, 100 * swapped, 100 * renderedOnTheirSides, 100 * renderedSwapped);
        }
    }

    /** A pair of categories on their sides in a scene, and its prompt. */
    record Pair(Category left, Category right, Scene scene) {
        String prompt() {
            return "a " + left.word() + " on the left and a " + right.word() + " on the right " + scene.phrase();
        }
    }

    public static Result measure(StableDiffusion sd, AttributeClassifier judge, int count, int steps, double guidance, long seed,
                                 Progress progress) {
        WorldGenerator world = new WorldGenerator();
        SplittableRandom rng = new SplittableRandom(seed);
        List<Pair> pairs = new ArrayList<>();
        List<Sample> rendered = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            Category a = pick(rng, Category.values()), b;
            do b = pick(rng, Category.values()); while (b == a);
            Pair p = new Pair(a, b, pick(rng, Scene.values()));
            pairs.add(p);
            rendered.add(world.render(SceneSpec.pair(WorldGenerator.trainingInstance(a, rng), WorldGenerator.trainingInstance(b, rng),
                    p.scene(), Size.SMALL), rng.nextLong()));
        }
        List<BufferedImage> generated = PromptFollowing.sample(sd, pairs.stream().map(Pair::prompt).toList(), steps, guidance, seed,
                "sampling pair prompts", progress);
        try (Scope s = Scope.inference()) {
            int[] generatedCounts = judge(judge, AttributeClassifier.picturesOf(generated), pairs);
            int[] renderedCounts = judge(judge, AttributeClassifier.pictures(rendered), pairs);
            return new Result(count, generatedCounts[0] / (double) count, generatedCounts[1] / (double) count,
                    renderedCounts[0] / (double) count, renderedCounts[1] / (double) count);
        }
    }

    /**
     * How many pictures show the pair on its sides, and how many swapped. The classifier reads one object at a time:
     * a half, mirrored onto the other half, is a picture of that object twice.
     */
    static int[] judge(AttributeClassifier judge, Tensor pictures, List<Pair> pairs) {
        long width = Ops.shape(pictures)[3], half = width / 2;
        Tensor leftHalf = pictures.narrow(3, 0, half), rightHalf = pictures.narrow(3, width - half, half);
        long[] left = judge.predict(Ops.cat(3, leftHalf, leftHalf.flip(new long[] {3}))).get(AttributeClassifier.Attribute.CATEGORY);
        long[] right = judge.predict(Ops.cat(3, rightHalf.flip(new long[] {3}), rightHalf)).get(AttributeClassifier.Attribute.CATEGORY);
        int onSides = 0, swapped = 0;
        for (int i = 0; i < pairs.size(); i++) {
            int a = pairs.get(i).left().ordinal(), b = pairs.get(i).right().ordinal();
            if (left[i] == a && right[i] == b) onSides++;
            if (left[i] == b && right[i] == a) swapped++;
        }
        return new int[] {onSides, swapped};
    }

    private static <T> T pick(SplittableRandom rng, T[] options) {
        return options[rng.nextInt(options.length)];
    }
}
