package dev.perfusion.bench;

import dev.perfusion.demo.Demo;
import dev.perfusion.io.layout.ModelSource;
import dev.perfusion.perfusion.CovarianceCache;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.pretrain.BaseModelRecipe;
import dev.perfusion.pretrain.Pretrainer;
import dev.perfusion.tensor.OpClock;
import dev.perfusion.tensor.Ops;
import dev.perfusion.training.ConceptTrainer;
import dev.perfusion.training.TrainingSettings;
import dev.perfusion.util.ProcessMemory;
import dev.perfusion.util.Progress;
import dev.perfusion.world.Bundled;
import dev.perfusion.world.WorldCorpus;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static dev.perfusion.bench.EngineBench.f;

/**
 * Training on a world model (the bundled one unless another is given), through the same code as {@code demo} and
 * {@code pretrain}: the demo concept's Perfusion training (steps per second near the start and near the end of the
 * run, and where a step's time goes), and the pretraining diffusion stage continued from the model on its recorded
 * recipe (pictures per second, and where a step's time goes). Another checkout's bundled model measures this code on
 * that checkout's recipe, for a like-for-like comparison with its code ({@code bench/reference/training_against.sh}).
 */
final class TrainingBench {
    private TrainingBench() {}

    /** Steps at each end of a run that the rate is measured over. */
    private static final int WINDOW = 50;
    /** Steps at the start left out of the first window (warm-up: allocator, caches, JIT). */
    private static final int WARM_UP = 10;

    /** {@code dtype}: what the UNet computes in while the concept trains, and while pretraining trains it (fp32 or bf16 mixed precision). */
    static void run(Path model, int conceptSteps, int pretrainSteps, torch.ScalarType dtype, Map<String, String> results, Progress out) throws IOException {
        try (dev.perfusion.io.AtomicFiles.ScratchFolder scratch = dev.perfusion.io.AtomicFiles.ScratchFolder.create("perfusion-bench-training")) {
            Path dir = scratch.dir();
            results.put("world model", model.toString());
            concept(model, conceptSteps, dtype, dir, results, out);
            if (pretrainSteps > 0) pretraining(model, pretrainSteps, dtype == torch.ScalarType.BFloat16, dir.resolve("pretrain"), results, out);
        }
    }

    private static void concept(Path model, int steps, torch.ScalarType dtype, Path dir, Map<String, String> results, Progress out) throws IOException {
        StableDiffusion sd = StableDiffusion.load(model, ModelSource.Options.defaults(), Ops.cpu(), dtype, out);
        Tensor cInv = CovarianceCache.inverseFor(sd, WorldCorpus.forModel(model), CovarianceCache.defaultDir(),
                CovarianceCache.DEFAULT_CAPTIONS, out);
        TrainingSettings settings = TrainingSettings.defaults().toBuilder().steps(steps).schedule(0, 0).build();
        ConceptTrainer trainer = new ConceptTrainer(sd, cInv, Demo.WORD, Demo.SUPERCATEGORY, settings);
        StepClock clock = new StepClock(out);
        OpClock.start();
        trainer.train(Bundled.examples(Demo.WORD), null, dir.resolve("concept.safetensors"), false, null, clock);
        Map<String, long[]> ops = OpClock.stop();
        String what = f("Perfusion training of %s on the world model (batch %d x %d, %dx%d pictures, UNet in %s)", Demo.WORD,
                settings.batchSize(), settings.gradientAccumulation(), sd.pictureSize(), sd.pictureSize(), dtype == torch.ScalarType.Float ? "fp32" : "bf16");
        results.put(what + ", steps/s", clock.rates(steps));
        results.put(what + ", per step", trainer.phases().describe(steps, "step"));
        results.put(what + ", forward passes by operation, per step", OpClock.describe(ops, steps));
        results.put("peak resident memory after concept training", f("%.2f GiB", ProcessMemory.peakResidentGiB()));
    }

    private static void pretraining(Path model, int steps, boolean bf16, Path work, Map<String, String> results, Progress out) throws IOException {
        BaseModelRecipe recipe = BaseModelRecipe.recordedIn(model).withSteps(0, steps, 0).withBf16(bf16);
        StepClock clock = new StepClock(out);
        Pretrainer pretrainer = new Pretrainer(recipe, work, clock).schedule(Integer.MAX_VALUE, Integer.MAX_VALUE).continueFrom(model);
        OpClock.start();
        pretrainer.run();
        Map<String, long[]> ops = OpClock.stop();
        String what = f("pretraining diffusion stage, the model's recipe (batch %d, %dx%d pictures, UNet in %s)", recipe.diffusionBatch(),
                recipe.imageSize(), recipe.imageSize(), bf16 ? "bf16 mixed precision" : "fp32");
        results.put(what + ", pictures/s", clock.pictureRates(steps, recipe.diffusionBatch()));
        results.put(what + ", per step", pretrainer.phases().describe(steps, "step"));
        results.put(what + ", forward passes by operation, per step (with the final sample pictures)", OpClock.describe(ops, steps));
        results.put("peak resident memory after pretraining steps", f("%.2f GiB", ProcessMemory.peakResidentGiB()));
    }

    /** Records when each training step ended, from the trainers' progress calls; passes messages on. */
    private static final class StepClock implements Progress {
        private final Progress out;
        private final List<Long> ends = new ArrayList<>();
        private String task;

        StepClock(Progress out) {
            this.out = out;
        }

        @Override
        public void update(String task, long done, long total, String detail) {
            if (!task.equals(this.task)) ends.clear(); // a new stage or a new run: count its steps alone
            this.task = task;
            if (done == ends.size() + 1) ends.add(System.nanoTime());
            out.update(task, done, total, detail);
        }

        @Override
        public void message(String text) {
            out.message(text);
        }

        /** Steps per second over the first steps after the warm-up, and over the last ones. */
        String rates(int steps) {
            double[] r = windows(steps);
            return f("%.2f over steps %d-%d, %.2f over steps %d-%d (%+.1f%%)", r[0], (int) r[2], (int) r[3], r[1], (int) r[4], (int) r[5],
                    100 * (r[1] - r[0]) / r[0]);
        }

        String pictureRates(int steps, int batch) {
            double[] r = windows(steps);
            return f("%.1f over steps %d-%d, %.1f over steps %d-%d (%.3f s per step at the end)", r[0] * batch, (int) r[2], (int) r[3],
                    r[1] * batch, (int) r[4], (int) r[5], 1 / r[1]);
        }

        private double[] windows(int steps) {
            if (ends.size() < 4) throw new IllegalStateException("too few steps to time: " + ends.size());
            int warm = Math.min(WARM_UP, ends.size() / 4);
            int window = Math.min(WINDOW, (ends.size() - warm) / 2);
            int firstFrom = warm, firstTo = warm + window, lastFrom = ends.size() - 1 - window, lastTo = ends.size() - 1;
            return new double[] {rate(firstFrom, firstTo), rate(lastFrom, lastTo), firstFrom + 1, firstTo + 1, lastFrom + 1, lastTo + 1};
        }

        private double rate(int from, int to) {
            return (to - from) / ((ends.get(to) - ends.get(from)) / 1e9);
        }
    }
}
