package dev.perfusion.eval;

import dev.perfusion.nn.AdamW;
import dev.perfusion.nn.Conv2d;
import dev.perfusion.nn.Linear;
import dev.perfusion.nn.Module;
import dev.perfusion.nn.Weights;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.util.Progress;
import dev.perfusion.world.Category;
import dev.perfusion.world.HeldOut;
import dev.perfusion.world.Instance;
import dev.perfusion.world.Placement;
import dev.perfusion.world.Sample;
import dev.perfusion.world.Scene;
import dev.perfusion.world.SceneSpec;
import dev.perfusion.world.Size;
import dev.perfusion.world.WorldGenerator;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The project's analogue of a CLIP image encoder for concept fidelity: a small CNN that maps a 64x64 world picture
 * to a unit vector that tells instances apart (this teddy with a blue bow, not just a teddy). It predicts where
 * the object is and pools its features there, so the embedding describes the object region, not the scene; a
 * caller may also restrict the region (the left half, where the prompt put the concept). Trained with a cosine
 * instance-classification loss over many training-stream instances plus a mask loss against the renderer's masks.
 */
public final class InstanceEncoder extends Module {
    private static final int SIZE_PX = 64, FEATURE = 8, DIM = 64;
    private static final double SCALE = 16.0;
    private final Judges.ConvTrunk trunk;
    private final Conv2d where;
    private final Linear embed;

    public InstanceEncoder() {
        this.trunk = child("trunk", new Judges.ConvTrunk(new int[] {3, 32, 64, 128, 128}, new int[] {2, 2, 1, 2}));
        this.where = child("where", new Conv2d(128, 1, 1, 1, 0));
        this.embed = child("embed", new Linear(128, DIM, true));
    }

    private record Output(Tensor embedding, Tensor maskLogits) {}

    /** @param region [B, 1, 8, 8] weights that restrict pooling (1 = may be the object), or null for anywhere */
    private Output run(Tensor images, Tensor region) {
        Tensor h = trunk.forward(images);
        Tensor logits = where.forward(h);
        Tensor weight = Ops.sigmoid(logits);
        if (region != null) weight = Ops.mul(weight, region);
        Tensor pooled = Ops.div(Ops.sum(Ops.sum(Ops.mul(h, weight), 3, false), 2, false),
                Ops.add(Ops.sum(Ops.sum(weight, 3, false), 2, false), 1e-4));
        Tensor e = embed.forward(pooled);
        return new Output(Ops.unitRows(e), logits);
    }

    /** Unit embeddings [B, 64] of pictures [B, 3, 64, 64] in [-1, 1], pooled over the predicted object region. */
    public Tensor embed(Tensor images) {
        return embed(images, null);
    }

    /** The same with the pooling restricted to {@code region} ([B, 1, 8, 8] or [1, 1, 8, 8]). */
    public Tensor embed(Tensor images, Tensor region) {
        try (Scope s = Scope.inference()) {
            return Scope.keep(run(images, region).embedding());
        }
    }

    /** Where an object with this placement is: a window [1, 1, 8, 8] (halves for left/right, etc.; all for centre). */
    public static Tensor window(Placement placement) {
        float[] w = new float[FEATURE * FEATURE];
        for (int y = 0; y < FEATURE; y++) {
            for (int x = 0; x < FEATURE; x++) {
                boolean in = switch (placement) {
                    case LEFT -> x < FEATURE / 2;
                    case RIGHT -> x >= FEATURE / 2;
                    case TOP -> y < FEATURE / 2;
                    case BOTTOM -> y >= FEATURE / 2;
                    case CENTER -> true;
                };
                w[y * FEATURE + x] = in ? 1f : 0f;
            }
        }
        return Ops.fromFloats(w, 1, 1, FEATURE, FEATURE);
    }

    /** Held-out retrieval accuracy: the fraction of query pictures whose nearest gallery instance is their own. */
    public record Accuracy(double heldOutConcepts, double unseenInstances) {}

    public record Trained(InstanceEncoder model, Accuracy accuracy, int steps, int instances, long seed) {
        public void save(Path file) throws IOException {
            Map<String, String> meta = Judges.metadata("instance encoder", steps, "instances", instances, seed);
            meta.put("accuracy.heldout", Judges.fraction(accuracy.heldOutConcepts()));
            meta.put("accuracy.unseen", Judges.fraction(accuracy.unseenInstances()));
            Judges.save(model, file, meta);
        }
    }

    public static InstanceEncoder load(Path file) throws IOException {
        return Judges.load(new InstanceEncoder(), file, "instance encoder", "judges --only instances");
    }

    public static Trained train(int steps, int batch, int instanceCount, long seed, Progress progress) {
        SplittableRandom pick = new SplittableRandom(seed);
        List<Instance> instances = new ArrayList<>();
        for (int i = 0; i < instanceCount; i++) {
            instances.add(WorldGenerator.trainingInstance(Category.values()[i % Category.values().length], pick));
        }
        InstanceEncoder model = new InstanceEncoder();
        Weights.initRandom(model, seed);
        Linear classes = new Linear(DIM, instanceCount, false);
        Weights.initRandom(classes, seed + 1);
        AdamW optimizer = Judges.optimizer(2e-3, model, classes);
        WorldGenerator world = new WorldGenerator(SIZE_PX);
        Judges.train("training the instance encoder", steps, optimizer, progress, step -> {
            SplittableRandom rng = new SplittableRandom(seed * 104_729 + step);
            List<Sample> samples = new ArrayList<>();
            long[] labels = new long[batch];
            for (int i = 0; i < batch; i++) {
                int k = rng.nextInt(instanceCount);
                labels[i] = k;
                samples.add(world.render(randomView(instances.get(k), rng), rng.nextLong()));
            }
            Output out = model.run(AttributeClassifier.pictures(samples), null);
            // cosine classifier: unit class vectors, so the embedding's direction is what is learned
            Tensor w = classes.weight.t();
            Tensor unitW = Ops.unitRows(w);
            Tensor logits = Ops.mul(Ops.matmul(out.embedding(), unitW.t()), SCALE);
            return Ops.add(torch.cross_entropy(logits, Ops.fromLongs(labels, batch)),
                    torch.binary_cross_entropy_with_logits(out.maskLogits(), masks(samples)));
        });
        Judges.freeze(model);
        List<Instance> unseen = new ArrayList<>();
        SplittableRandom other = new SplittableRandom(~seed);
        for (int i = 0; i < 40; i++) unseen.add(WorldGenerator.trainingInstance(Category.values()[i % Category.values().length], other));
        Accuracy acc = new Accuracy(model.retrieval(HeldOut.instances(), seed + 7), model.retrieval(unseen, seed + 8));
        return new Trained(model, acc, steps, instanceCount, seed);
    }

    /** Gallery: the mean embedding of 6 views per instance; queries: 10 other views each; top-1 accuracy. */
    public double retrieval(List<Instance> instances, long seed) {
        try (Scope s = Scope.inference()) {
            WorldGenerator world = new WorldGenerator(SIZE_PX);
            List<Tensor> gallery = new ArrayList<>();
            for (Instance inst : instances) gallery.add(Ops.mean(embedHere(AttributeClassifier.pictures(world.views(inst, 6, seed)), null), 0, true));
            Tensor g = Ops.cat(gallery, 0);
            int right = 0, total = 0;
            SplittableRandom rng = new SplittableRandom(seed);
            for (int k = 0; k < instances.size(); k++) {
                List<Sample> queries = new ArrayList<>();
                for (int q = 0; q < 10; q++) queries.add(world.render(randomView(instances.get(k), rng), rng.nextLong()));
                long[] best = Ops.toLongs(Ops.matmul(embedHere(AttributeClassifier.pictures(queries), null), g.t()).argmax(new org.bytedeco.pytorch.LongOptional(1), false));
                for (long b : best) if (b == k) right++;
                total += queries.size();
            }
            return right / (double) total;
        }
    }

    /** Cosine similarity of each picture's (region's) embedding to the mean embedding of the reference pictures. */
    public double[] similarity(Tensor pictures, Tensor region, Tensor referenceMean) {
        try (Scope s = Scope.inference()) {
            return Ops.toDoubles(Ops.matmul(embedHere(pictures, region), referenceMean.reshape(-1, 1)).reshape(-1));
        }
    }

    /**
     * Which instance of {@code gallery} (rows: normalised reference embeddings, see {@link #reference}) each picture, or
     * its {@code region}, shows: the index of the most similar row.
     */
    public long[] identify(Tensor pictures, Tensor region, Tensor gallery) {
        try (Scope s = Scope.inference()) {
            return Ops.toLongs(Ops.matmul(embedHere(pictures, region), gallery.t()).argmax(new org.bytedeco.pytorch.LongOptional(1), false));
        }
    }

    /** The normalised mean embedding of reference pictures (a concept's training photos). */
    public Tensor reference(Tensor pictures) {
        try (Scope s = Scope.inference()) {
            Tensor m = Ops.mean(embedHere(pictures, null), 0, false);
            return Scope.keep(Ops.div(m, Ops.item(m.norm())));
        }
    }

    /** {@link #embed} freed with the scope open now, for use within it (not left to the GC once per scored batch). */
    private Tensor embedHere(Tensor images, Tensor region) {
        return Scope.adopt(embed(images, region));
    }

    private static SceneSpec randomView(Instance inst, SplittableRandom rng) {
        return SceneSpec.single(inst, Scene.values()[rng.nextInt(Scene.values().length)],
                Placement.values()[rng.nextInt(Placement.values().length)], Size.values()[rng.nextInt(Size.values().length)]);
    }

    private static Tensor masks(List<Sample> samples) {
        List<Tensor> m = new ArrayList<>();
        for (Sample s : samples) m.add(Ops.avgPool2d(Ops.fromFloats(s.mask(), 1, 1, SIZE_PX, SIZE_PX), SIZE_PX / FEATURE));
        return Ops.cat(m, 0);
    }
}
