package dev.perfusion.eval;

import dev.perfusion.nn.AdamW;
import dev.perfusion.nn.Linear;
import dev.perfusion.nn.Module;
import dev.perfusion.nn.Weights;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.util.Progress;
import dev.perfusion.world.Category;
import dev.perfusion.world.ColorWord;
import dev.perfusion.world.Instance;
import dev.perfusion.world.Labels;
import dev.perfusion.world.Placement;
import dev.perfusion.world.Sample;
import dev.perfusion.world.Scene;
import dev.perfusion.world.SceneSpec;
import dev.perfusion.world.Size;
import dev.perfusion.world.WorldGenerator;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Function;

/**
 * A small CNN that reads what a 64x64 world picture shows: for a picture of one object its category, scene,
 * placement, main colour and size; for any picture the scene and which categories are present (a multi-label head
 * that also reads pairs, to tell whether a prompt's second object is there). Trained on the generator's labels, it is the judge of whether a model's samples show what their
 * prompts ask for. Training pictures are randomly blurred and noised so that the judge also reads generated
 * (softer) pictures.
 */
public final class AttributeClassifier extends Module {
    /** What the classifier reads, with the labels' value for each picture. */
    public enum Attribute {
        CATEGORY(Category.values().length, l -> l.category().ordinal()),
        SCENE(Scene.values().length, l -> l.scene().ordinal()),
        PLACEMENT(Placement.values().length, l -> l.placement().ordinal()),
        COLOUR(ColorWord.values().length, l -> l.color().ordinal()),
        SIZE(Size.values().length, l -> l.size().ordinal());

        final int classes;
        private final Function<Labels, Integer> truth;

        Attribute(int classes, Function<Labels, Integer> truth) {
            this.classes = classes;
            this.truth = truth;
        }

        public int of(Labels labels) {
            return truth.apply(labels);
        }

        public String label() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    private static final int SIZE_PX = 64;
    private final Judges.ConvTrunk trunk;
    private final Linear hidden;
    private final Linear heads;
    private final Linear presence;
    private static final double PAIR_FRACTION = 0.3;

    public AttributeClassifier() {
        this.trunk = child("trunk", new Judges.ConvTrunk(new int[] {3, 32, 64, 128, 128}, new int[] {2, 2, 2, 2}));
        this.hidden = child("hidden", new Linear(128 * 4 * 4, 256, true));
        int classes = 0;
        for (Attribute a : Attribute.values()) classes += a.classes;
        this.heads = child("heads", new Linear(256, classes, true));
        this.presence = child("presence", new Linear(256, Category.values().length, true));
    }

    private Tensor features(Tensor images) {
        return Ops.silu(hidden.forward(trunk.forward(images).flatten(1, -1)));
    }

    /** Probability that each category is in each picture, [B, categories]. */
    public float[][] presence(Tensor images) {
        try (Scope s = Scope.inference()) {
            Tensor p = Ops.sigmoid(presence.forward(features(images)));
            long b = Ops.shape(p)[0], c = Ops.shape(p)[1];
            float[] flat = Ops.toFloats(p);
            float[][] out = new float[(int) b][(int) c];
            for (int i = 0; i < b; i++) System.arraycopy(flat, (int) (i * c), out[i], 0, (int) c);
            return out;
        }
    }

    /** Logits per attribute for pictures [B, 3, 64, 64] in [-1, 1]. */
    public Map<Attribute, Tensor> forward(Tensor images) {
        return heads(features(images));
    }

    private Map<Attribute, Tensor> heads(Tensor h) {
        Tensor logits = heads.forward(h);
        Map<Attribute, Tensor> out = new EnumMap<>(Attribute.class);
        long at = 0;
        for (Attribute a : Attribute.values()) {
            out.put(a, Ops.narrow(logits, 1, at, a.classes));
            at += a.classes;
        }
        return out;
    }

    /** The most likely class of each attribute for each picture. */
    public Map<Attribute, long[]> predict(Tensor images) {
        Map<Attribute, long[]> out = new EnumMap<>(Attribute.class);
        try (Scope s = Scope.inference()) {
            forward(images).forEach((a, logits) -> out.put(a, Ops.toLongs(logits.argmax(new org.bytedeco.pytorch.LongOptional(1), false))));
        }
        return out;
    }

    /** Held-out accuracy per attribute, on unseen training-stream instances and on the held-out concepts. */
    public record Accuracy(Map<Attribute, Double> unseenPictures, Map<Attribute, Double> heldOutInstances, double pairPresence) {}

    /** Trains from a seeded random initialisation; returns the accuracy on pictures it never saw. */
    public static Trained train(int steps, int batch, long seed, Progress progress) {
        AttributeClassifier model = new AttributeClassifier();
        Weights.initRandom(model, seed);
        AdamW optimizer = Judges.optimizer(2e-3, model);
        WorldGenerator world = new WorldGenerator(SIZE_PX);
        Judges.train("training the attribute classifier", steps, optimizer, progress, step -> {
            SplittableRandom rng = new SplittableRandom(seed * 7919 + step);
            List<Sample> samples = new ArrayList<>();
            for (int i = 0; i < batch; i++) {
                samples.add(world.render(rng.nextDouble() < PAIR_FRACTION ? randomPair(rng) : randomSingle(rng), rng.nextLong()));
            }
            Tensor h = model.features(augment(pictures(samples), rng));
            Map<Attribute, Tensor> logits = model.heads(h);
            Tensor loss = null;
            for (Attribute a : Attribute.values()) {
                long[] target = new long[batch];
                for (int i = 0; i < batch; i++) {
                    boolean pair = samples.get(i).labels().second().isPresent();
                    // -100 is cross-entropy's ignore index: in a pair only the scene is the picture's, not "the" object's
                    target[i] = pair && a != Attribute.SCENE ? -100 : a.of(samples.get(i).labels());
                }
                Tensor l = torch.cross_entropy(logits.get(a), Ops.fromLongs(target, batch));
                loss = loss == null ? l : Ops.add(loss, l);
            }
            return Ops.add(loss, torch.binary_cross_entropy_with_logits(model.presence.forward(h), presentTargets(samples)));
        });
        Judges.freeze(model);
        SplittableRandom pairRng = new SplittableRandom(~seed * 31);
        List<Sample> pairs = new ArrayList<>();
        for (int i = 0; i < 500; i++) pairs.add(world.render(randomPair(pairRng), pairRng.nextLong()));
        Accuracy acc = new Accuracy(model.accuracy(unseen(world, seed, false)), model.accuracy(unseen(world, seed, true)),
                model.pairPresenceAccuracy(pairs));
        return new Trained(model, acc, steps, batch, seed);
    }

    /** A trained classifier with what it scored on held-out pictures and how it was trained. */
    public record Trained(AttributeClassifier model, Accuracy accuracy, int steps, int batch, long seed) {
        public void save(Path file) throws IOException {
            Map<String, String> meta = Judges.metadata("attribute classifier", steps, "batch", batch, seed);
            accuracy.unseenPictures().forEach((a, v) -> meta.put("accuracy.unseen." + a.label(), Judges.fraction(v)));
            accuracy.heldOutInstances().forEach((a, v) -> meta.put("accuracy.heldout." + a.label(), Judges.fraction(v)));
            meta.put("accuracy.pairs.presence", Judges.fraction(accuracy.pairPresence()));
            Judges.save(model, file, meta);
        }
    }

    public static AttributeClassifier load(Path file) throws IOException {
        return Judges.load(new AttributeClassifier(), file, "attribute classifier", "judges --only classifier");
    }

    /** Fraction right per attribute over the pictures. */
    public Map<Attribute, Double> accuracy(List<Sample> samples) {
        Map<Attribute, Integer> right = new EnumMap<>(Attribute.class);
        for (int from = 0; from < samples.size(); from += 64) {
            List<Sample> chunk = samples.subList(from, Math.min(samples.size(), from + 64));
            Map<Attribute, long[]> p;
            try (Scope s = Scope.inference()) {
                p = predict(pictures(chunk));
            }
            for (Attribute a : Attribute.values()) {
                for (int i = 0; i < chunk.size(); i++) {
                    if (p.get(a)[i] == a.of(chunk.get(i).labels())) right.merge(a, 1, Integer::sum);
                }
            }
        }
        Map<Attribute, Double> out = new EnumMap<>(Attribute.class);
        for (Attribute a : Attribute.values()) out.put(a, right.getOrDefault(a, 0) / (double) samples.size());
        return out;
    }

    /** 1000 pictures from a seed range training never draws, of fresh instances or of the held-out concepts. */
    static List<Sample> unseen(WorldGenerator world, long seed, boolean heldOutInstances) {
        SplittableRandom rng = new SplittableRandom(~seed ^ (heldOutInstances ? 0x1234 : 0x4321));
        List<Sample> out = new ArrayList<>();
        List<Instance> held = dev.perfusion.world.HeldOut.instances();
        for (int i = 0; i < 1000; i++) {
            SceneSpec spec = randomSingle(rng);
            if (heldOutInstances) spec = spec.withPrimary(held.get(rng.nextInt(held.size())));
            out.add(world.render(spec, rng.nextLong()));
        }
        return out;
    }

    private static Tensor presentTargets(List<Sample> samples) {
        int c = Category.values().length;
        float[] t = new float[samples.size() * c];
        for (int i = 0; i < samples.size(); i++) {
            Labels l = samples.get(i).labels();
            t[i * c + l.category().ordinal()] = 1;
            int row = i;
            l.second().ifPresent(p -> t[row * c + p.instance().category().ordinal()] = 1);
        }
        return Ops.fromFloats(t, samples.size(), c);
    }

    /** Fraction of pair pictures in which exactly the two categories present are read as present. */
    public double pairPresenceAccuracy(List<Sample> pairs) {
        int right = 0;
        for (int from = 0; from < pairs.size(); from += 64) {
            List<Sample> chunk = pairs.subList(from, Math.min(pairs.size(), from + 64));
            float[][] p = presence(pictures(chunk));
            for (int i = 0; i < chunk.size(); i++) {
                Labels l = chunk.get(i).labels();
                boolean ok = true;
                for (Category c : Category.values()) {
                    boolean truth = l.category() == c || l.second().map(x -> x.instance().category() == c).orElse(false);
                    ok &= (p[i][c.ordinal()] > 0.5) == truth;
                }
                if (ok) right++;
            }
        }
        return right / (double) pairs.size();
    }

    static SceneSpec randomPair(SplittableRandom rng) {
        Category a = Category.values()[rng.nextInt(Category.values().length)], b;
        do {
            b = Category.values()[rng.nextInt(Category.values().length)];
        } while (b == a);
        Size size = rng.nextBoolean() ? Size.SMALL : Size.MEDIUM;
        Instance first = WorldGenerator.trainingInstance(a, rng), second = WorldGenerator.trainingInstance(b, rng);
        Scene scene = Scene.values()[rng.nextInt(Scene.values().length)];
        return rng.nextBoolean() ? SceneSpec.pair(first, second, scene, size)
                : new SceneSpec(scene, new dev.perfusion.world.Placed(first, Placement.RIGHT, size), new dev.perfusion.world.Placed(second, Placement.LEFT, size));
    }

    static SceneSpec randomSingle(SplittableRandom rng) {
        Category c = Category.values()[rng.nextInt(Category.values().length)];
        return SceneSpec.single(WorldGenerator.trainingInstance(c, rng), Scene.values()[rng.nextInt(Scene.values().length)],
                Placement.values()[rng.nextInt(Placement.values().length)], Size.values()[rng.nextInt(Size.values().length)]);
    }

    /** [B, 3, 64, 64] in [-1, 1]. */
    public static Tensor pictures(List<Sample> samples) {
        List<Tensor> xs = new ArrayList<>();
        for (Sample s : samples) xs.add(dev.perfusion.io.Png.toTensor(s.image()));
        return Ops.cat(xs, 0);
    }

    /** The same from images of any size (generated pictures), resized to 64x64. */
    public static Tensor picturesOf(List<BufferedImage> images) {
        List<Tensor> xs = new ArrayList<>();
        for (BufferedImage img : images) {
            BufferedImage small = img;
            if (img.getWidth() != SIZE_PX || img.getHeight() != SIZE_PX) {
                small = new BufferedImage(SIZE_PX, SIZE_PX, BufferedImage.TYPE_INT_RGB);
                var g = small.createGraphics();
                g.setRenderingHint(java.awt.RenderingHints.KEY_INTERPOLATION, java.awt.RenderingHints.VALUE_INTERPOLATION_BILINEAR);
                g.drawImage(img, 0, 0, SIZE_PX, SIZE_PX, null);
                g.dispose();
            }
            xs.add(dev.perfusion.io.Png.toTensor(small));
        }
        return Ops.cat(xs, 0);
    }

    /** Half the batch box-blurred, all of it lightly noised: generated pictures are softer than rendered ones. */
    static Tensor augment(Tensor x, SplittableRandom rng) {
        long b = Ops.shape(x)[0];
        Tensor blurred = torch.avg_pool2d(x, new long[] {3, 3}, new long[] {1, 1}, new long[] {1, 1}, false, false, new org.bytedeco.pytorch.LongOptional());
        float[] pick = new float[(int) b];
        for (int i = 0; i < b; i++) pick[i] = rng.nextBoolean() ? 1f : 0f;
        Tensor w = Ops.fromFloats(pick, b, 1, 1, 1);
        Tensor mixed = Ops.add(Ops.mul(blurred, w), Ops.mul(x, Ops.add(Ops.neg(w), 1.0)));
        torch.manual_seed(rng.nextLong());
        return Ops.add(mixed, Ops.mul(torch.randn(Ops.shape(x)), 0.04 * rng.nextDouble()));
    }
}
