package dev.perfusion.pretrain;

import dev.perfusion.io.Safetensors;
import dev.perfusion.nn.AdamW;
import dev.perfusion.nn.Module;
import dev.perfusion.nn.Param;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
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
 */
final class TrainedWeights {
    private final String stage;
    private final Path checkpoint;
    private final BaseModelRecipe recipe;
    private final Progress progress;
    private final List<Module> emaModules = new ArrayList<>();
    private final List<Tensor> params = new ArrayList<>(), ema = new ArrayList<>();
    private final List<String> names = new ArrayList<>();
    private final AdamW optimizer;

    TrainedWeights(Stage stage, PretrainingRun run) {
        this.stage = stage.plan().name();
        this.checkpoint = run.work().resolve("checkpoint-" + this.stage + ".safetensors");
        this.recipe = run.recipe();
        this.progress = run.progress();
        List<AdamW.Group> groups = new ArrayList<>();
        List<Module> modules = stage.modules();
        double learningRate = stage.plan().learningRate();
        for (int m = 0; m < modules.size(); m++) {
            Module copy = emptyTwin(modules.get(m));
            emaModules.add(copy);
            Map<String, Param> twin = copy.namedParameters();
            for (Map.Entry<String, Param> e : modules.get(m).namedParameters().entrySet()) {
                Tensor p = e.getValue().t();
                try (Scope s = Scope.inference()) {
                    twin.get(e.getKey()).set(p.detach().clone());
                }
                if (!stage.learns(e.getKey())) continue;
                p.set_requires_grad(true);
                params.add(p);
                names.add(m + "." + e.getKey());
                groups.add(new AdamW.Group(m + "." + e.getKey(), p, learningRate));
                ema.add(twin.get(e.getKey()).t());
            }
        }
        this.optimizer = new AdamW(groups, recipe.weightDecay());
    }

    /** The tensors the stage trains, in the optimizer's order. */
    List<Tensor> leaves() {
        return params;
    }

    void lrScale(double scale) {
        optimizer.setLrScale(scale);
    }

    /** Clips the global gradient norm to 1, steps AdamW, updates the EMA (with the usual warm-up of its decay). */
    void step(int step, Phases phases) {
        try (Scope s = Scope.inference()) {
            List<Tensor> norms = new ArrayList<>();
            for (Tensor p : params) if (p.grad().defined()) norms.add(p.grad().norm().reshape(1));
            double norm = Ops.item(Ops.cat(norms, 0).norm());
            if (norm > 1.0) for (Tensor p : params) if (p.grad().defined()) p.grad().mul_(new Scalar(1.0 / norm));
        }
        phases.lap("gradient clipping");
        optimizer.step();
        optimizer.zeroGrad();
        phases.lap("optimizer");
        double decay = Math.min(recipe.emaDecay(), (1.0 + step) / (10.0 + step));
        try (Scope s = Scope.inference()) {
            for (int i = 0; i < params.size(); i++) {
                ema.get(i).mul_(new Scalar(decay)).add_(params.get(i).detach(), new Scalar(1 - decay));
            }
        }
        phases.lap("EMA");
    }

    /** The EMA copy of the stage's {@code index}-th module. */
    <M extends Module> M ema(int index, Class<M> type) {
        return type.cast(emaModules.get(index));
    }

    void save(int step) throws IOException {
        Map<String, Tensor> t = new LinkedHashMap<>();
        for (int i = 0; i < params.size(); i++) {
            t.put("param." + names.get(i), params.get(i).detach());
            t.put("ema." + names.get(i), ema.get(i));
        }
        List<Tensor> state = optimizer.state();
        for (int i = 0; i < state.size(); i++) t.put("adam." + i, state.get(i));
        Safetensors.write(checkpoint, t, Map.of("stage", stage, "step", Integer.toString(step),
                "seed", Long.toString(recipe.seed())), Safetensors.StoredType.F32);
        progress.message("checkpoint at " + stage + " step " + step);
    }

    /** Restores the stage's checkpoint, if there is one; returns the step to continue from (0 without). */
    int resume() throws IOException {
        if (!Files.isRegularFile(checkpoint)) return 0;
        Safetensors st = Safetensors.open(checkpoint);
        if (!stage.equals(st.metadata().get("stage"))) return 0;
        if (!Long.toString(recipe.seed()).equals(st.metadata().get("seed"))) {
            throw new IOException(checkpoint + ": checkpoint of a run with seed " + st.metadata().get("seed") + ", this recipe's seed is " + recipe.seed());
        }
        try (NoGradGuard ng = new NoGradGuard()) {
            for (int i = 0; i < params.size(); i++) {
                params.get(i).copy_(st.get("param." + names.get(i)));
                ema.get(i).copy_(st.get("ema." + names.get(i)));
            }
        }
        List<Tensor> state = new ArrayList<>();
        for (int i = 0; st.keys().contains("adam." + i); i++) state.add(st.get("adam." + i));
        int step = Integer.parseInt(st.metadata().get("step"));
        optimizer.restore(state, step);
        progress.message("resumed " + stage + " at step " + step + " from " + checkpoint);
        return step;
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
