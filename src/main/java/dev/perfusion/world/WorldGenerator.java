package dev.perfusion.world;

import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The synthetic world: a deterministic stream of captioned training pictures, plus rendering of chosen scenes and
 * instances (for personalization data and reference pictures). Everything is a pure function of its seed, and
 * a generator holds no mutable state, so data-loading threads may share one.
 */
public final class WorldGenerator {
    public static final int DEFAULT_SIZE = 64;
    private static final double PAIR_PROBABILITY = 0.3;
    private static final Size[] PAIR_SIZES = {Size.SMALL, Size.MEDIUM};

    record Rendered(Sample sample, BufferedImage background) {}

    private final Renderer renderer;

    public WorldGenerator() {
        this(DEFAULT_SIZE);
    }

    /** @param size image side in pixels; 64 for training, larger only for display */
    public WorldGenerator(int size) {
        this(size, false);
    }

    /**
     * @param accessoryMasks whether samples carry their objects' {@link Sample#accessoryMasks} (each such object is
     *                       drawn twice, so only where they are used; else the list is empty)
     */
    public WorldGenerator(int size, boolean accessoryMasks) {
        this.renderer = new Renderer(size, accessoryMasks);
    }

    /** Training sample number {@code seed}: random category, instance, scene, placement, size, maybe a pair. */
    public Sample sample(long seed) {
        return sampleWithBackground(seed).sample();
    }

    /** The labels-to-be of training sample {@code seed}, without rendering it. */
    public static SceneSpec trainingSpec(long seed) {
        return trainingSpec(new SplittableRandom(seed));
    }

    public Sample render(SceneSpec spec) {
        return render(spec, 0);
    }

    /** Renders the spec; the seed picks pose jitter, background details and the caption's wording. */
    public Sample render(SceneSpec spec, long seed) {
        return renderWithBackground(spec, seed).sample();
    }

    /** A specific instance as the primary object of the spec (whose own primary instance is replaced). */
    public Sample render(Instance inst, SceneSpec spec, long seed) {
        return render(spec.withPrimary(inst), seed);
    }

    /**
     * A few pictures of one instance alone, in varied scenes, placements (mostly central), sizes and poses:
     * the personalization training set of a concept.
     */
    public List<Sample> views(Instance inst, int count, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        List<Sample> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            Scene scene = Scene.values()[rng.nextInt(Scene.values().length)];
            Placement where = rng.nextDouble() < 0.6 ? Placement.CENTER : pick(rng, Placement.values());
            Size size = rng.nextBoolean() ? Size.MEDIUM : Size.LARGE;
            out.add(render(SceneSpec.single(inst, scene, where, size), rng.nextLong()));
        }
        return out;
    }

    /** The bare scene a render with the same background seed is painted on. */
    public BufferedImage background(Scene scene, long seed) {
        return renderer.background(scene, seed);
    }

    /**
     * An instance for the training stream. Seeds come from the non-negative range (held-out seeds are negative)
     * and look-alikes of held-out instances are redrawn, so the base model never sees a held-out concept.
     */
    public static Instance trainingInstance(Category category, SplittableRandom rng) {
        while (true) {
            Instance inst = Instance.random(category, rng.nextLong() & Long.MAX_VALUE);
            if (!HeldOut.resembles(inst)) {
                return inst;
            }
        }
    }

    /** A training instance with a given main colour (for prompts such as "next to a red car"). */
    public static Instance trainingInstance(Category category, ColorWord color, SplittableRandom rng) {
        if (!category.colors().contains(color)) {
            throw new IllegalArgumentException("no " + color.word() + " " + category.word() + " in this world");
        }
        while (true) {
            Instance inst = trainingInstance(category, rng);
            if (inst.color() == color) {
                return inst;
            }
        }
    }

    Rendered sampleWithBackground(long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        SceneSpec spec = trainingSpec(rng);
        return renderWithBackground(spec, rng.nextLong());
    }

    /** The caption of training sample {@code seed} ({@link #sample}'s), without drawing the picture. */
    public static String trainingCaption(long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        SceneSpec spec = trainingSpec(rng);
        return Described.of(spec, rng.nextLong()).caption();
    }

    Rendered renderWithBackground(SceneSpec spec, long seed) {
        Described d = Described.of(spec, seed);
        Renderer.Result r = renderer.render(d.labels(), d.backgroundSeed());
        return new Rendered(new Sample(r.image(), d.caption(), d.labels(), r.masks(), r.accessoryMasks()), r.background());
    }

    /** What a render seed decides before any pixel is painted: poses, hence labels, and the caption's wording. */
    private record Described(Labels labels, String caption, long backgroundSeed) {
        static Described of(SceneSpec spec, long seed) {
            SplittableRandom rng = new SplittableRandom(seed);
            long backgroundSeed = rng.nextLong();
            Pose first = Pose.random(rng);
            Pose second = spec.second() == null ? null : Pose.random(rng);
            Labels labels = new Labels(spec, first, second);
            return new Described(labels, CaptionGrammar.caption(labels, rng), backgroundSeed);
        }
    }

    private static SceneSpec trainingSpec(SplittableRandom rng) {
        Category category = pick(rng, Category.values());
        Instance inst = trainingInstance(category, rng);
        Scene scene = pick(rng, Scene.values());
        if (rng.nextDouble() < PAIR_PROBABILITY) {
            Category other;
            do {
                other = pick(rng, Category.values());
            } while (other == category);
            Placement where = rng.nextBoolean() ? Placement.LEFT : Placement.RIGHT;
            return new SceneSpec(scene, new Placed(inst, where, pick(rng, PAIR_SIZES)),
                    new Placed(trainingInstance(other, rng), where.opposite(), pick(rng, PAIR_SIZES)));
        }
        return SceneSpec.single(inst, scene, pick(rng, Placement.values()), pick(rng, Size.values()));
    }

    private static <T> T pick(SplittableRandom rng, T[] options) {
        return options[rng.nextInt(options.length)];
    }
}
