package dev.perfusion.pretrain;

import dev.perfusion.io.Safetensors;
import dev.perfusion.nn.AdamW;
import dev.perfusion.nn.Module;
import dev.perfusion.nn.Param;
import dev.perfusion.nn.PartGradients;
import dev.perfusion.nn.Weights;
import dev.perfusion.pretrain.WorldBatches.Batch;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.tensor.ScopePerTest;
import dev.perfusion.util.Phases;
import dev.perfusion.util.Progress;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The stage's trained tensors, gradients, EMA copy and AdamW moments as flat buffers: the steps of the per-tensor
 * code they replaced, the tensors views of the buffers, and the checkpoint's per-parameter format.
 */
class TrainedWeightsTest {
    private static final double LR = 0.05, LR_SCALE = 0.7;
    /** The global gradient norm is clipped at steps 0 and 2, not at step 1. */
    private static final double[] GRADIENT_SCALES = {1, 0.001, 3, 0.5};
    private static final String FROZEN = "conv_in.bias";
    private static final BaseModelRecipe RECIPE = BaseModelRecipe.standard();

    @RegisterExtension final ScopePerTest scope = ScopePerTest.training();
    @TempDir Path tmp;

    /** A small image tower (convolutions, group norms, an attention pool) and a one-value module; one parameter frozen. */
    private static final class TinyStage implements Stage {
        final ImageTower tower = new ImageTower(new ImageTower.Config(List.of(4, 8), 2, 4, 1, 0));
        final ContrastiveLoss scale = new ContrastiveLoss();

        TinyStage(long seed) {
            Weights.initRandom(tower, seed);
            scale.initialise();
        }

        @Override public Plan plan() { return new Plan("tiny", "testing", "loss", GRADIENT_SCALES.length, 0, LR, null); }
        @Override public List<Module> modules() { return List.of(tower, scale); }
        @Override public boolean learns(String parameter) { return !parameter.equals(FROZEN); }
        @Override public Loss loss(Batch batch, int step) { throw new UnsupportedOperationException(); }
        @Override public void samples(TrainedWeights weights, int step) {}
        @Override public Path finish(TrainedWeights weights, double loss) { return null; }

        /** The trained parameters under the checkpoint's names ("module index.name"), in the stage's order. */
        Map<String, Tensor> trained() {
            Map<String, Tensor> out = new LinkedHashMap<>();
            for (int m = 0; m < modules().size(); m++) {
                for (Map.Entry<String, Param> e : modules().get(m).namedParameters().entrySet()) {
                    if (learns(e.getKey())) out.put(m + "." + e.getKey(), e.getValue().t());
                }
            }
            return out;
        }
    }

    /** The per-tensor step that the flat buffers replaced, as TrainedWeights took it: clip, AdamW per tensor, EMA. */
    private static final class PerTensor {
        final List<Tensor> params = new ArrayList<>(), ema = new ArrayList<>();
        final AdamW adam;

        PerTensor(List<Tensor> start) {
            List<AdamW.Group> groups = new ArrayList<>();
            for (Tensor t : start) {
                Tensor p = t.detach().clone().set_requires_grad(true);
                params.add(p);
                ema.add(t.detach().clone());
                groups.add(new AdamW.Group("p" + groups.size(), p, LR));
            }
            adam = new AdamW(groups, RECIPE.weightDecay());
            adam.setLrScale(LR_SCALE);
        }

        void step(int step) {
            backward(params, gradients(step));
            try (Scope s = Scope.inference()) {
                List<Tensor> norms = new ArrayList<>();
                for (Tensor p : params) norms.add(p.grad().norm().reshape(1));
                double norm = Ops.item(Ops.cat(norms, 0).norm());
                if (norm > 1.0) for (Tensor p : params) p.grad().mul_(new Scalar(1.0 / norm));
            }
            adam.step();
            adam.zeroGrad();
            double decay = Math.min(RECIPE.emaDecay(), (1.0 + step) / (10.0 + step));
            try (Scope s = Scope.inference()) {
                for (int i = 0; i < params.size(); i++) ema.get(i).mul_(new Scalar(decay)).add_(params.get(i).detach(), new Scalar(1 - decay));
            }
        }

        /** A checkpoint as the per-tensor code wrote it. */
        void save(Path file, List<String> names, int step) throws IOException {
            Map<String, Tensor> t = new LinkedHashMap<>();
            for (int i = 0; i < names.size(); i++) {
                t.put("param." + names.get(i), params.get(i).detach());
                t.put("ema." + names.get(i), ema.get(i));
            }
            List<Tensor> state = adam.state();
            for (int i = 0; i < state.size(); i++) t.put("adam." + i, state.get(i));
            Safetensors.write(file, t, Map.of("stage", "tiny", "step", Integer.toString(step), "seed", Long.toString(RECIPE.seed())), Safetensors.StoredType.F32);
        }
    }

    private static TinyStage stage() {
        return new TinyStage(5);
    }

    private static TrainedWeights weights(TinyStage stage, Path work) {
        return weights(stage, work, RECIPE);
    }

    private static TrainedWeights weights(TinyStage stage, Path work, BaseModelRecipe recipe) {
        TrainedWeights w = new TrainedWeights(stage, new PretrainingRun(recipe, work, Progress.NONE, null, null, System.nanoTime(), new Phases()));
        w.lrScale(LR_SCALE);
        return w;
    }

    private static void step(TrainedWeights weights, int step) {
        backward(weights.leaves(), gradients(step));
        weights.step(step, new Phases());
    }

    /** Step {@code step}'s gradients, one per trained tensor (the same for every instance of the stage). */
    private static List<Tensor> gradients(int step) {
        List<long[]> shapes = stage().trained().values().stream().map(Ops::shape).toList();
        torch.manual_seed(100 + step);
        List<Tensor> out = new ArrayList<>();
        for (long[] shape : shapes) out.add(Ops.mul(torch.randn(shape), GRADIENT_SCALES[step]));
        return out;
    }

    /** Backward of sum(t * g) over the tensors: adds each g to its tensor's gradient. */
    private static void backward(List<Tensor> tensors, List<Tensor> gradients) {
        try (Scope s = Scope.open()) {
            Tensor loss = Ops.scalar(0);
            for (int i = 0; i < tensors.size(); i++) loss = Ops.add(loss, Ops.mul(tensors.get(i), gradients.get(i)).sum());
            loss.backward();
        }
    }

    private static void assertClose(Tensor expected, Tensor actual, double tolerance, String what) {
        assertArrayEquals(Ops.shape(expected), Ops.shape(actual), what);
        double diff = Ops.maxAbsDiff(expected.detach(), actual.detach());
        assertTrue(diff <= tolerance, what + " differs by " + diff);
    }

    private static Map<String, Tensor> emaParameters(TrainedWeights weights) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        weights.ema(0, ImageTower.class).namedParameters().forEach((name, p) -> out.put("0." + name, p.t()));
        weights.ema(1, ContrastiveLoss.class).namedParameters().forEach((name, p) -> out.put("1." + name, p.t()));
        return out;
    }

    @Test
    void theFlatStepsAreThePerTensorSteps() throws IOException {
        TinyStage stage = stage();
        Tensor frozen = stage.tower.namedParameters().get(FROZEN).t().clone();
        PerTensor expected = new PerTensor(List.copyOf(stage.trained().values()));
        TrainedWeights weights = weights(stage, tmp);
        List<String> names = List.copyOf(stage.trained().keySet());
        for (int s = 0; s < 3; s++) {
            expected.step(s);
            step(weights, s);
        }

        List<Tensor> trained = List.copyOf(stage.trained().values());
        Map<String, Tensor> ema = emaParameters(weights);
        for (int i = 0; i < names.size(); i++) {
            assertClose(expected.params.get(i), trained.get(i), 1e-6, names.get(i));
            assertClose(expected.ema.get(i), ema.get(names.get(i)), 1e-6, "the EMA of " + names.get(i));
        }
        assertTrue(Ops.maxAbsDiff(trained.get(0), expected.ema.get(0)) > 1e-3, "the EMA lags the weights");
        assertEquals(0, Ops.maxAbsDiff(frozen, stage.tower.namedParameters().get(FROZEN).t()), "the frozen parameter stays");
        assertEquals(0, Ops.maxAbsDiff(frozen, ema.get("0." + FROZEN)), "and so does its EMA copy");

        weights.save(3, 10, 0, Double.NaN);
        Safetensors saved = Safetensors.open(tmp.resolve("checkpoint-tiny.safetensors"));
        List<Tensor> moments = expected.adam.state();
        for (int i = 0; i < moments.size(); i++) assertClose(moments.get(i), saved.get("adam." + i), 1e-6, "adam." + i);
    }

    @Test
    void everyTrainedTensorAndItsGradientAreViewsOfTheFlatBuffers() {
        TinyStage stage = stage();
        List<String> names = List.copyOf(stage.trained().keySet());
        List<Tensor> before = List.copyOf(stage.trained().values());
        float[] values = new float[before.size()];
        for (int i = 0; i < values.length; i++) values[i] = Ops.toFloats(before.get(i))[0];
        TrainedWeights weights = weights(stage, tmp);
        List<Tensor> leaves = weights.leaves();
        Tensor frozen = stage.tower.namedParameters().get(FROZEN).t();
        // the batch in two parts, their gradients added into the leaves' as the stage loop does
        PartGradients.define(leaves);
        List<List<Tensor>> parts = List.of(gradients(0), gradients(1));
        PartGradients.run(null, 2, k -> {
            try (Scope s = Scope.open()) {
                Tensor objective = Ops.scalar(0);
                for (int i = 0; i < leaves.size(); i++) objective = Ops.add(objective, Ops.mul(leaves.get(i), parts.get(k).get(i)).sum());
                return new PartGradients.Part<>(k, PartGradients.of(objective, leaves));
            }
        }, leaves);

        long offset = 0;
        Tensor first = leaves.get(0), firstGrad = first.grad();
        for (int i = 0; i < leaves.size(); i++) {
            Tensor p = leaves.get(i), grad = p.grad();
            assertSame(before.get(i), p, "the module keeps its tensor");
            assertEquals(values[i], Ops.toFloats(p)[0], "and its value");
            assertTrue(p.is_leaf() && p.requires_grad(), "a leaf that requires grad");
            assertTrue(p.is_alias_of(first) && p.storage_offset() == offset, "tensor " + i + " in the flat parameters");
            assertTrue(grad.is_alias_of(firstGrad) && grad.storage_offset() == offset && !grad.is_alias_of(first), "gradient " + i + " in the flat gradients");
            assertClose(Ops.add(parts.get(0).get(i), parts.get(1).get(i)), grad, 1e-6, "gradient " + i + ", both parts");
            offset += p.numel();
        }
        assertFalse(frozen.is_alias_of(first) || frozen.requires_grad(), "the frozen parameter is not in the buffer");
        Tensor firstEma = emaParameters(weights).get(names.get(0)), lastEma = emaParameters(weights).get(names.get(names.size() - 1));
        assertTrue(firstEma.is_alias_of(lastEma) && !firstEma.is_alias_of(first), "the EMA copies are one buffer of their own");
        weights.step(0, new Phases());

        // a gradient made anew instead of added into would no longer be stepped: the step refuses it
        TrainedWeights replaced = weights(stage(), tmp);
        replaced.leaves().get(2).mutable_grad().put(Ops.zerosLike(replaced.leaves().get(2)));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> replaced.step(0, new Phases()));
        assertTrue(e.getMessage().contains("the gradient of " + names.get(2)), e.getMessage());
    }

    @Test
    void checkpointsKeepTheirPerParameterTensorsAndResumeToTheSameState() throws IOException {
        TinyStage stage = stage();
        Map<String, Tensor> trained = stage.trained();
        List<String> names = List.copyOf(trained.keySet());
        TrainedWeights weights = weights(stage, tmp);
        for (int s = 0; s < 2; s++) step(weights, s);
        weights.save(2, 10, 0, Double.NaN);

        Safetensors saved = Safetensors.open(tmp.resolve("checkpoint-tiny.safetensors"));
        Set<String> expectedNames = new TreeSet<>();
        for (int i = 0; i < names.size(); i++) {
            long[] shape = Ops.shape(trained.get(names.get(i)));
            for (String key : List.of("param." + names.get(i), "ema." + names.get(i), "adam." + i, "adam." + (names.size() + i))) {
                expectedNames.add(key);
                assertArrayEquals(shape, saved.shape(key), key);
            }
        }
        assertEquals(expectedNames, new TreeSet<>(saved.keys()));

        TinyStage other = new TinyStage(6);
        TrainedWeights resumed = weights(other, tmp);
        assertEquals(2, resumed.resume().step());
        step(weights, 2);
        step(resumed, 2);
        assertEquals(names, List.copyOf(other.trained().keySet()));
        Map<String, Tensor> ema = emaParameters(weights), resumedEma = emaParameters(resumed);
        for (String name : names) {
            assertClose(trained.get(name), other.trained().get(name), 0, name + " after a step from the checkpoint");
            assertClose(ema.get(name), resumedEma.get(name), 0, "the EMA of " + name);
        }

        // a checkpoint the per-tensor code wrote resumes too
        Path old = Files.createDirectories(tmp.resolve("old"));
        PerTensor expected = new PerTensor(List.copyOf(stage().trained().values()));
        for (int s = 0; s < 2; s++) expected.step(s);
        expected.save(old.resolve("checkpoint-tiny.safetensors"), names, 2);
        TinyStage fromOld = new TinyStage(7);
        TrainedWeights continued = weights(fromOld, old);
        assertEquals(2, continued.resume().step());
        expected.step(2);
        step(continued, 2);
        List<Tensor> continuedParams = List.copyOf(fromOld.trained().values());
        Map<String, Tensor> continuedEma = emaParameters(continued);
        for (int i = 0; i < names.size(); i++) {
            assertClose(expected.params.get(i), continuedParams.get(i), 1e-6, names.get(i) + " continued from the per-tensor checkpoint");
            assertClose(expected.ema.get(i), continuedEma.get(names.get(i)), 1e-6, "the EMA of " + names.get(i));
        }
    }

    /** A run started again with other options would go on from the checkpoint and record the new recipe as the whole run's. */
    @Test
    void aCheckpointResumesOnlyUnderItsOwnRecipeButForStepCounts() throws IOException {
        TrainedWeights weights = weights(stage(), tmp);
        step(weights, 0);
        weights.save(1, 10, 0, Double.NaN);
        assertEquals(1, weights(stage(), tmp, RECIPE.withSteps(RECIPE.vaeSteps() + 7, RECIPE.diffusionSteps() * 2, RECIPE.decoderSteps() + 1)).resume().step(),
                "more or fewer steps go on from it");
        IOException e = assertThrows(IOException.class, () -> weights(stage(), tmp, RECIPE.withCaptionDetails(0.5).withBf16(!RECIPE.bf16())).resume().step());
        assertTrue(e.getMessage().contains("checkpoint of a run with another recipe (captionDetails unset, now 0.5; bf16 unset, now "), e.getMessage());
        assertTrue(e.getMessage().contains("another --work folder"), e.getMessage());
    }
}
