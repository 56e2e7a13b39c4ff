package dev.perfusion.pretrain;

import dev.perfusion.io.Safetensors;
import dev.perfusion.nn.AdamW;
import dev.perfusion.nn.FlatLayout;
import dev.perfusion.nn.Module;
import dev.perfusion.nn.Param;
import dev.perfusion.tensor.CpuFeatures;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.tensor.Threads;
import dev.perfusion.text.ClipTextModel;
import dev.perfusion.text.ClipTextModelWithProjection;
import dev.perfusion.unet.UNet2DConditionModel;
import dev.perfusion.util.Phases;
import dev.perfusion.util.Progress;
import dev.perfusion.vae.AutoencoderKL;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The weights a stage trains, their AdamW state and an EMA copy of its modules; saved to and restored from the
 * stage's checkpoint file, whose metadata says the stage, the step and the recipe's seed. One checkpoint per stage,
 * so that the decoder stage can run beside the diffusion stage.
 * <p>
 * The trained tensors, their gradients, their EMA copies and their AdamW moments are each one flat buffer of which
 * every tensor is a view ({@link FlatLayout}): clipping, AdamW and the EMA are then a few native calls a step, not a
 * few per tensor (the world model has 394). The checkpoint still names a tensor per parameter.
 */
final class TrainedWeights {
    private final Stage owner;
    private final String stage;
    private final Path checkpoint;
    private final BaseModelRecipe recipe;
    private final Progress progress;
    private final List<Module> emaModules = new ArrayList<>();
    private final List<Tensor> params = new ArrayList<>(), ema = new ArrayList<>();
    private final List<String> names = new ArrayList<>();
    private final FlatLayout layout;
    private final Tensor flatParams, flatGrads, flatEma;
    private final AdamW optimizer;
    private boolean gradientsChecked;

    TrainedWeights(Stage stage, PretrainingRun run) {
        this.owner = stage;
        this.stage = stage.plan().name();
        this.checkpoint = checkpointOf(run.work(), this.stage);
        this.recipe = run.recipe();
        this.progress = run.progress();
        this.computedOn = computedOn();
        List<Param> emaParams = new ArrayList<>();
        List<Module> modules = stage.modules();
        for (int m = 0; m < modules.size(); m++) {
            Module copy = emptyTwin(modules.get(m));
            emaModules.add(copy);
            Map<String, Param> twin = copy.namedParameters();
            for (Map.Entry<String, Param> e : modules.get(m).namedParameters().entrySet()) {
                Tensor p = e.getValue().t();
                if (!stage.learns(e.getKey())) {
                    try (Scope s = Scope.inference()) {
                        twin.get(e.getKey()).set(p.detach().clone());
                    }
                    continue;
                }
                p.set_requires_grad(true);
                params.add(p);
                names.add(m + "." + e.getKey());
                emaParams.add(twin.get(e.getKey()));
            }
        }
        layout = new FlatLayout(params);
        flatParams = layout.adopt(params);
        flatGrads = layout.adoptGradients(params); // before the first backward, which then adds into them
        try (Scope s = Scope.inference()) {
            flatEma = Scope.keep(flatParams.clone());
            List<Tensor> views = layout.views(flatEma);
            for (int i = 0; i < views.size(); i++) emaParams.get(i).set(views.get(i));
            ema.addAll(views);
        }
        this.optimizer = new AdamW(List.of(new AdamW.Group(this.stage, flatParams, flatGrads, stage.plan().learningRate())), recipe.weightDecay());
    }

    /** The tensors the stage trains, in the checkpoint's order. */
    List<Tensor> leaves() {
        return params;
    }

    void lrScale(double scale) {
        optimizer.setLrScale(scale);
    }

    /** Clips the global gradient norm to 1, steps AdamW, updates the EMA (with the usual warm-up of its decay). */
    void step(int step, Phases phases) {
        try (Scope s = Scope.inference()) {
            if (!gradientsChecked) { // after the first backward, which must have added into the flat gradients
                requireFlat();
                gradientsChecked = true;
            }
            double norm = Ops.item(flatGrads.norm());
            // a NaN norm passes "norm > 1" and would reach the weights, the EMA and the next checkpoint
            if (!Double.isFinite(norm)) {
                throw new IllegalStateException(stage + " gradient norm became " + norm + " at step " + (step + 1)
                        + " (the weights are left as they were); lower the learning rate and resume from the last checkpoint");
            }
            if (norm > 1.0) flatGrads.mul_(new Scalar(1.0 / norm));
        }
        phases.lap("gradient clipping");
        optimizer.step();
        optimizer.zeroGrad();
        phases.lap("optimizer");
        double decay = Math.min(recipe.emaDecay(), (1.0 + step) / (10.0 + step));
        try (Scope s = Scope.inference()) {
            flatEma.lerp_(flatParams, new Scalar(1 - decay)); // ema = decay ema + (1 - decay) params
        }
        phases.lap("EMA");
    }

    /**
     * Fails unless every trained tensor, its gradient and its EMA copy are still views of the flat buffers; checked
     * after the first backward and at every checkpoint, since it costs native calls per tensor.
     */
    private void requireFlat() {
        try (Scope s = Scope.inference()) {
            List<Tensor> grads = new ArrayList<>(params.size());
            for (Tensor p : params) grads.add(p.grad());
            layout.requireViews(params, flatParams, i -> "trained tensor " + names.get(i));
            layout.requireViews(grads, flatGrads, i -> "the gradient of " + names.get(i));
            layout.requireViews(ema, flatEma, i -> "the EMA copy of " + names.get(i));
        }
    }

    /** The EMA copy of the stage's {@code index}-th module. */
    <M extends Module> M ema(int index, Class<M> type) {
        return type.cast(emaModules.get(index));
    }

    /**
     * What a step's bits depend on besides the recipe: the thread count (how work and batches are split) and the
     * instruction set the kernels are chosen for.
     */
    static final String COMPUTED_ON = "computed_on";

    /** Taken when the stage starts, on the run's own thread: its steps' workers each compute on one thread of their own. */
    private final String computedOn;

    static String computedOn() {
        return Threads.configured() + " threads, " + CpuFeatures.isa();
    }

    /**
     * Where a stage's checkpoint left it: the step, and what its learning rate schedule and logged loss were then (absent
     * in checkpoints written before they were recorded).
     */
    record Resumed(int step, java.util.OptionalInt scheduleSteps, java.util.OptionalInt warmupSteps, double smoothedLoss) {
        static final Resumed START = new Resumed(0, java.util.OptionalInt.empty(), java.util.OptionalInt.empty(), Double.NaN);
    }

    /**
     * Writes the checkpoint: per trained tensor its value, its EMA copy, then AdamW's m of each and v of each, then what
     * the stage learns beside them ({@link Stage#learnedBeside}, {@code beside.} and its name); with the
     * steps and warm-up its learning rate schedule runs over, and the smoothed loss, so that a resumed run goes on as one.
     */
    void save(int step, int scheduleSteps, int warmupSteps, double smoothedLoss) throws IOException {
        requireFlat();
        try (Scope s = Scope.inference()) {
            Map<String, Tensor> t = new LinkedHashMap<>();
            for (int i = 0; i < params.size(); i++) {
                t.put("param." + names.get(i), params.get(i).detach());
                t.put("ema." + names.get(i), ema.get(i));
            }
            List<Tensor> moments = new ArrayList<>();
            for (Tensor flat : optimizer.state()) moments.addAll(layout.views(flat));
            for (int i = 0; i < moments.size(); i++) t.put("adam." + i, moments.get(i));
            owner.learnedBeside().forEach((name, value) -> t.put(BESIDE + name, value));
            Map<String, String> metadata = new LinkedHashMap<>(Map.of("stage", stage, "step", Integer.toString(step),
                    "seed", Long.toString(recipe.seed()), "recipe", recipe.withoutStepCounts().toString(), COMPUTED_ON, computedOn));
            metadata.put(SCHEDULE_STEPS, Integer.toString(scheduleSteps));
            metadata.put(WARMUP_STEPS, Integer.toString(warmupSteps));
            if (Double.isFinite(smoothedLoss)) metadata.put(SMOOTHED_LOSS, Double.toString(smoothedLoss));
            Safetensors.write(checkpoint, t, metadata, Safetensors.StoredType.F32);
        }
        progress.message("checkpoint at " + stage + " step " + step);
    }

    /** The prefix of what the stage learns beside its trained weights ({@link Stage#learnedBeside}) in the checkpoint. */
    private static final String BESIDE = "beside.";

    private static final String SCHEDULE_STEPS = "schedule_steps", WARMUP_STEPS = "warmup_steps", SMOOTHED_LOSS = "smoothed_loss";

    /** Where a stage's checkpoint is kept in a work folder. */
    static Path checkpointOf(Path work, String stage) {
        return work.resolve("checkpoint-" + stage + ".safetensors");
    }

    /**
     * Refuses a stage's checkpoint that {@code recipe} would not go on from (another seed, another recipe but for its step
     * counts). {@link Pretrainer} asks this of the folder's checkpoints before it trains or records anything.
     */
    static void checkResumable(Path checkpoint, BaseModelRecipe recipe) throws IOException {
        if (Files.isRegularFile(checkpoint)) checkResumable(checkpoint, Safetensors.open(checkpoint).metadata(), recipe);
    }

    /** As {@link #checkResumable(Path, BaseModelRecipe)}, and refuses a checkpoint of {@code stage} at or past the {@code steps} asked. */
    static void checkResumable(Path work, String stage, int steps, BaseModelRecipe recipe) throws IOException {
        Path checkpoint = checkpointOf(work, stage);
        if (!Files.isRegularFile(checkpoint)) return;
        Map<String, String> metadata = Safetensors.open(checkpoint).metadata();
        checkResumable(checkpoint, metadata, recipe);
        if (stage.equals(metadata.get("stage"))) checkNotPast(work, stage, Integer.parseInt(metadata.get("step")), steps);
    }

    /** A checkpoint at or past the steps asked would be exported as a shorter run's, unsampled, with no loss. */
    static void checkNotPast(Path work, String stage, int step, int steps) throws IOException {
        if (step > 0 && step >= steps) {
            throw new IOException(work + ": the " + stage + " stage's checkpoint is at step " + step + ", past the " + steps
                    + " steps asked: give more than " + step + " to go on from it, or another work folder to start afresh");
        }
    }

    private static void checkResumable(Path checkpoint, Map<String, String> metadata, BaseModelRecipe recipe) throws IOException {
        if (!Long.toString(recipe.seed()).equals(metadata.get("seed"))) {
            throw new IOException(checkpoint + ": checkpoint of a run with seed " + metadata.get("seed") + ", this recipe's seed is " + recipe.seed());
        }
        String then = metadata.get("recipe"); // absent in checkpoints written before it was recorded
        if (then != null) {
            List<String> differ = BaseModelRecipe.differences(BaseModelRecipe.withoutStepCounts(then).toString(), recipe.withoutStepCounts());
            if (!differ.isEmpty()) {
                throw new IOException(checkpoint + ": checkpoint of a run with another recipe (" + String.join("; ", differ) + "): give the options it was "
                        + "started with to go on (only step counts may change), or another --work folder to start afresh");
            }
        }
    }

    /** Restores the stage's checkpoint, if there is one; says where it left the stage ({@link Resumed#START} without). */
    Resumed resume() throws IOException {
        if (!Files.isRegularFile(checkpoint)) return Resumed.START;
        Safetensors st = Safetensors.open(checkpoint);
        if (!stage.equals(st.metadata().get("stage"))) return Resumed.START;
        checkResumable(checkpoint, st.metadata(), recipe);
        try (NoGradGuard ng = new NoGradGuard()) {
            for (int i = 0; i < params.size(); i++) {
                params.get(i).copy_(st.get("param." + names.get(i)));
                ema.get(i).copy_(st.get("ema." + names.get(i)));
            }
        }
        int step = Integer.parseInt(st.metadata().get("step"));
        String computedThen = st.metadata().get(COMPUTED_ON); // absent in checkpoints written before it was recorded
        if (computedThen != null && !computedThen.equals(computedOn)) {
            progress.message("note: " + checkpoint + " was computed on " + computedThen + ", this run computes on " + computedOn
                    + ": it goes on from the same weights, but its steps are no longer bit for bit those of one uninterrupted run");
        }
        try (Scope s = Scope.inference()) {
            List<Tensor> moments = new ArrayList<>();
            for (int i = 0; st.keys().contains("adam." + i); i++) moments.add(st.get("adam." + i));
            int n = params.size();
            if (moments.size() != 2 * n) {
                throw new IOException(checkpoint + ": " + moments.size() + " AdamW moments, expected m and v of each of the " + n + " trained tensors");
            }
            optimizer.restore(List.of(layout.join(moments.subList(0, n)), layout.join(moments.subList(n, 2 * n))), step);
        }
        restoreBeside(st);
        progress.message("resumed " + stage + " at step " + step + " from " + checkpoint);
        Map<String, String> m = st.metadata();
        return new Resumed(step, m.containsKey(SCHEDULE_STEPS) ? java.util.OptionalInt.of(Integer.parseInt(m.get(SCHEDULE_STEPS))) : java.util.OptionalInt.empty(),
                m.containsKey(WARMUP_STEPS) ? java.util.OptionalInt.of(Integer.parseInt(m.get(WARMUP_STEPS))) : java.util.OptionalInt.empty(),
                m.containsKey(SMOOTHED_LOSS) ? Double.parseDouble(m.get(SMOOTHED_LOSS)) : Double.NaN);
    }

    /** What the stage learns beside its weights, from the checkpoint; said where the checkpoint has none of it. */
    private void restoreBeside(Safetensors st) throws IOException {
        try (Scope s = Scope.open()) { // not inference mode: the critic's weights require gradients
            java.util.Set<String> names = owner.learnedBeside().keySet();
            if (names.isEmpty()) return;
            if (names.stream().noneMatch(n -> st.keys().contains(BESIDE + n))) {
                progress.message("note: " + checkpoint + " was written before the stage kept what it learns beside its weights: " + owner.withoutBeside());
                return;
            }
            Map<String, Tensor> saved = new LinkedHashMap<>();
            for (String name : names) {
                if (!st.keys().contains(BESIDE + name)) throw new IOException(checkpoint + ": no " + BESIDE + name + " beside the stage's other state");
                saved.put(name, st.get(BESIDE + name));
            }
            owner.restoreBeside(saved);
        }
    }

    /** A finished stage needs no checkpoint. */
    void deleteCheckpoint() throws IOException {
        Files.deleteIfExists(checkpoint);
    }

    /** A second instance of the same architecture (for the EMA weights). */
    private static Module emptyTwin(Module m) {
        if (m instanceof AutoencoderKL a) return AutoencoderKL.create(a.config());
        if (m instanceof ClipTextModel t) return ClipTextModel.create(t.config());
        if (m instanceof ClipTextModelWithProjection t) return ClipTextModelWithProjection.create(t.config());
        if (m instanceof ImageTower i) return new ImageTower(i.config());
        if (m instanceof ContrastiveLoss) return new ContrastiveLoss();
        if (m instanceof UNet2DConditionModel u) return UNet2DConditionModel.create(u.config());
        throw new IllegalArgumentException("no twin for " + m.getClass());
    }
}
