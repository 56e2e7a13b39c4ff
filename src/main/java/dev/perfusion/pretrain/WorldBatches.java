package dev.perfusion.pretrain;

import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.tensor.Threads;
import dev.perfusion.world.CaptionGrammar;
import dev.perfusion.world.Labels;
import dev.perfusion.world.Sample;
import dev.perfusion.world.WorldGenerator;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Batches of synthetic-world pictures, drawn on one loader thread while the previous step trains. The pictures of a
 * step are a pure function of it, so a resumed stage draws what an uninterrupted one would have.
 */
final class WorldBatches implements AutoCloseable {
    /**
     * A batch of world pictures in [-1, 1], their objects' masks [B, 2, n, n] (the primary object's, then the second
     * object's, zero where there is none), where their objects' accessories are [B, 1, n, n] (the objects' accessory
     * masks, the larger of the two where both have one; null unless the recipe weighs them), their labels, and captions (some loose, some empty); and, once a stage has
     * {@link Stage#prepare prepared} it, what its frozen encoders make of them (else null): the pictures' latents and
     * the captions' text encodings.
     */
    record Batch(Tensor images, Tensor masks, Tensor accessories, List<Labels> labels, List<String> captions, Tensor latents, Tensor encodings) {
        Batch(Tensor images, Tensor masks, Tensor accessories, List<Labels> labels, List<String> captions) {
            this(images, masks, accessories, labels, captions, null, null);
        }

        Batch withFrozenEncodings(Tensor latents, Tensor encodings) {
            return new Batch(images, masks, accessories, labels, captions, latents, encodings);
        }

        /** The primary objects' masks [B, 1, n, n]. */
        Tensor primaryMasks() {
            return masks.narrow(1, 0, 1);
        }

        /** The parts of a batch as one batch, rows in part order. */
        static Batch concat(List<Batch> parts) {
            List<String> captions = new ArrayList<>();
            List<Labels> labels = new ArrayList<>();
            for (Batch p : parts) {
                captions.addAll(p.captions());
                labels.addAll(p.labels());
            }
            return new Batch(cat(parts, Batch::images), cat(parts, Batch::masks), cat(parts, Batch::accessories), labels, captions, cat(parts, Batch::latents),
                    cat(parts, Batch::encodings));
        }

        private static Tensor cat(List<Batch> parts, java.util.function.Function<Batch, Tensor> field) {
            return field.apply(parts.get(0)) == null ? null : Ops.cat(parts.stream().map(field).toList(), 0);
        }

        /** This batch with its tensors kept past the scope that made them, until {@link #release}. */
        Batch kept() {
            for (Tensor t : tensors()) Scope.keep(t);
            return this;
        }

        /** Frees the tensors {@link #kept} kept. */
        void release() {
            for (Tensor t : tensors()) t.releaseReference();
        }

        private List<Tensor> tensors() {
            return java.util.stream.Stream.of(images, masks, accessories, latents, encodings).filter(java.util.Objects::nonNull).toList();
        }
    }

    /**
     * Which pictures a stage trains on: step s draws the world's samples {@code seed + s * size + i}; with captions,
     * some of them empty (for guidance) unless {@code emptyCaptions} is false (contrastive training pairs every
     * picture with words).
     */
    record Series(long seed, int size, boolean captions, boolean emptyCaptions) {
        Series(long seed, int size, boolean captions) {
            this(seed, size, captions, captions);
        }
    }

    private record Pixels(float[] images, float[] masks, float[] accessories, List<Labels> labels, List<String> captions, int count) {}

    private final BaseModelRecipe recipe;
    private final WorldGenerator world;
    private final ExecutorService loader = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "world-batches");
        t.setDaemon(true);
        return t;
    });

    WorldBatches(BaseModelRecipe recipe) {
        this.recipe = recipe;
        this.world = new WorldGenerator(recipe.imageSize(), weighsAccessories());
    }

    /** Step {@code step}'s batch, drawn on the loader thread. */
    CompletableFuture<Batch> load(Series series, int step) {
        return CompletableFuture.supplyAsync(() -> draw(series, step, 0, 1), loader).thenApply(this::toTensors);
    }

    /** Step {@code step}'s batch, drawn on this thread (pictures for samples and measurements). */
    Batch now(Series series, int step) {
        return now(series, step, 0, 1);
    }

    /** Part {@code part} of {@code parts} of step {@code step}'s batch (its rows in order), drawn on this thread. */
    Batch now(Series series, int step, int part, int parts) {
        return toTensors(draw(series, step, part, parts));
    }

    /** Stops the loader, waiting for a batch it is still making (in libtorch, which a process's exit must not find busy). */
    @Override
    public void close() {
        Threads.shutDownAndAwait(loader);
    }

    /** Whether the recipe's loss weighs the accessories, so that batches carry their masks. */
    private boolean weighsAccessories() {
        return recipe.accessoryLossWeight() > 0;
    }

    private Batch toTensors(Pixels p) {
        int n = recipe.imageSize();
        return new Batch(Ops.fromFloats(p.images(), p.count(), 3, n, n), Ops.fromFloats(p.masks(), p.count(), 2, n, n),
                p.accessories() == null ? null : Ops.fromFloats(p.accessories(), p.count(), 1, n, n), p.labels(), p.captions());
    }

    private Pixels draw(Series series, int step, int part, int parts) {
        int n = recipe.imageSize(), plane = n * n, from = part * series.size() / parts, size = (part + 1) * series.size() / parts - from;
        float[] images = new float[size * 3 * plane], masks = new float[size * 2 * plane], accessories = weighsAccessories() ? new float[size * plane] : null;
        List<Labels> labels = new ArrayList<>();
        List<String> texts = new ArrayList<>();
        for (int i = 0; i < size; i++) {
            long seed = series.seed() + (long) step * series.size() + from + i;
            Sample s = world.sample(seed);
            for (int y = 0; y < n; y++) {
                for (int x = 0; x < n; x++) {
                    int rgb = s.image().getRGB(x, y), o = i * 3 * plane + y * n + x;
                    images[o] = ((rgb >> 16) & 255) / 127.5f - 1f;
                    images[o + plane] = ((rgb >> 8) & 255) / 127.5f - 1f;
                    images[o + 2 * plane] = (rgb & 255) / 127.5f - 1f;
                }
            }
            for (int k = 0; k < s.masks().size(); k++) System.arraycopy(s.masks().get(k), 0, masks, (2 * i + k) * plane, plane);
            for (float[] accessory : s.accessoryMasks()) {
                for (int q = 0; q < plane; q++) accessories[i * plane + q] = Math.max(accessories[i * plane + q], accessory[q]);
            }
            labels.add(s.labels());
            if (series.captions()) {
                SplittableRandom rng = new SplittableRandom(seed ^ 0x5DEECE66DL);
                double u = rng.nextDouble();
                if (!series.emptyCaptions()) texts.add(u < 0.5 ? s.caption() : CaptionGrammar.looseCaption(s.labels(), rng, recipe.captionDetails()));
                else texts.add(u < recipe.captionDropout() ? "" : u < 0.55 ? s.caption()
                        : CaptionGrammar.looseCaption(s.labels(), rng, recipe.captionDetails(), recipe.unnamedPlacementMiddle()));
            }
        }
        return new Pixels(images, masks, accessories, labels, texts, size);
    }
}
