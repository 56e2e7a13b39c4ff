package dev.perfusion.bench;

import dev.perfusion.io.AtomicFiles;
import dev.perfusion.io.Safetensors;
import dev.perfusion.io.layout.CheckpointLayout;
import dev.perfusion.io.layout.ModelConfigs;
import dev.perfusion.io.layout.ModelExport;
import dev.perfusion.io.layout.ResolvedModel;
import dev.perfusion.nn.Module;
import dev.perfusion.nn.Param;
import dev.perfusion.nn.Weights;
import dev.perfusion.tensor.FlopCounter;
import dev.perfusion.tensor.OpClock;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.tensor.Threads;
import dev.perfusion.text.ClipTextModel;
import dev.perfusion.unet.UNet2DConditionModel;
import dev.perfusion.util.Progress;
import dev.perfusion.util.ProcessMemory;
import dev.perfusion.vae.AutoencoderKL;
import dev.perfusion.world.Bundled;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

import static dev.perfusion.bench.Timing.median;
import static dev.perfusion.bench.Timing.secondsSince;
import static dev.perfusion.bench.Timing.timed;

/**
 * The engine's speed on a model of a built-in family's shapes with random weights (nothing to download): the
 * machine's fp32 matmul rate, the text encoder, a guided UNet step (batch 2) per image size and the fraction of the
 * matmul rate it reaches, a VAE decode, loading a checkpoint, peak resident memory; optionally Perfusion's costs
 * ({@link PerfusionBench}); or, instead of the SD-shaped model, training on the bundled model ({@link TrainingBench}).
 */
public final class EngineBench {
    private EngineBench() {}

    /**
     * What to measure: the family whose configs give the shapes, image sizes in pixels, timed UNet steps per size
     * (after one warm-up), and which of the optional measures to take; with {@code conceptTrainSteps} above 0, the
     * training measures on a world model instead ({@code worldModel}, the bundled one where null: that many concept
     * training steps, then {@code pretrainSteps} steps of the pretraining diffusion stage on its recorded recipe).
     */
    public record Plan(String family, List<Integer> sizes, int repeats, boolean vaeDecode, boolean checkpointLoad,
                       boolean perfusion, int conceptTrainSteps, int pretrainSteps, torch.ScalarType dtype, Path worldModel) {
        public Plan {
            sizes = List.copyOf(sizes);
        }
    }

    /** The measures in the order taken: what was measured, and its value with units. */
    public static Map<String, String> run(Plan plan, Progress progress) throws IOException {
        Map<String, String> results = new LinkedHashMap<>();
        results.put("threads", Threads.describe());
        results.put("native memory", Threads.describeAllocator());
        double matmulGflops = Threads.withBlasOnEveryCore(EngineBench::matmulRate);
        results.put("fp32 matmul 1024^3", f("%.0f GFLOP/s on every core (the machine's rate); %.0f GFLOP/s on the %d OpenBLAS thread(s) commands use",
                matmulGflops, matmulRate(), Threads.blasThreads()));
        progress.message("fp32 matmul rate: " + results.get("fp32 matmul 1024^3"));
        if (plan.conceptTrainSteps() > 0) {
            TrainingBench.run(plan.worldModel() != null ? plan.worldModel() : Bundled.model(), plan.conceptTrainSteps(), plan.pretrainSteps(), plan.dtype(), results, progress);
            return results;
        }

        long t0 = System.nanoTime();
        RandomModel model = RandomModel.of(plan.family());
        UNet2DConditionModel unet = model.unet();
        ClipTextModel text = model.text();
        AutoencoderKL vae = model.vae();
        if (plan.dtype() != torch.ScalarType.Float) {
            Weights.convert(unet, plan.dtype());
            Weights.convert(vae, plan.dtype());
        }
        vae.storeConvolutionsChannelsLast(); // as StableDiffusion.load stores it
        results.put("precision", plan.dtype() == torch.ScalarType.Float ? "fp32" : plan.dtype() + " UNet and VAE, fp32 text encoder");
        progress.message(f("built %s with random weights in %.1fs: UNet %,d, text encoder %,d, VAE %,d parameters", plan.family(),
                secondsSince(t0), unet.parameterCount(), text.parameterCount(), vae.parameterCount()));

        try (Scope s = Scope.inference()) {
            Tensor ids = Ops.fromLongs(new long[2 * 77], 2, 77);
            double textSeconds = median(timed(3, () -> text.encode(ids)));
            results.put("text encoder, batch 2", f("%.3f s", textSeconds));
            Tensor context = text.encode(ids).to(plan.dtype());
            for (int size : plan.sizes()) {
                long latent = size / 8;
                Tensor sample = Ops.ones(2, unet.config().inChannels(), latent, latent).to(plan.dtype());
                Tensor t = Ops.fromFloats(new float[] {500f}, 1);
                FlopCounter.start();
                try (Scope warm = Scope.inference()) { unet.forward(sample, t, context); }
                long flops = FlopCounter.stop();
                List<Double> times = timed(plan.repeats(), () -> unet.forward(sample, t, context));
                double med = median(times);
                double rate = flops / med / 1e9;
                results.put(f("UNet step %dx%d, batch 2", size, size), f("%.2f s/step (%.0f GFLOP, %.0f GFLOP/s = %.0f%% of matmul rate)",
                        med, flops / 1e9, rate, 100 * rate / matmulGflops));
                progress.message(f("UNet %dx%d batch 2: median %.2f s/step over %d (%s)", size, size, med, plan.repeats(), times));
                // one more step, clocked per operation after the timed ones, so that the clock cannot slow them
                OpClock.start();
                try (Scope step = Scope.inference()) { unet.forward(sample, t, context); }
                results.put(f("UNet step %dx%d by operation (one more step)", size, size), OpClock.describe(OpClock.stop(), 1));
            }
            if (plan.vaeDecode()) {
                int size = plan.sizes().get(plan.sizes().size() - 1);
                Tensor z = Ops.ones(1, vae.config().latentChannels(), size / 8, size / 8).to(plan.dtype());
                double first = median(timed(1, () -> vae.decode(z)));
                double vaeSeconds = median(timed(plan.repeats(), () -> vae.decode(z))); // timed as the UNet steps are, after a warm-up
                results.put(f("VAE decode %dx%d", size, size), f("%.2f s (median of %d after a warm-up of %.2f s)", vaeSeconds, plan.repeats(), first));
            }
        }
        results.put("peak resident memory: model + steps + VAE decode", f("%.2f GiB", ProcessMemory.peakResidentGiB()));
        if (plan.perfusion()) {
            PerfusionBench.run(unet, text, vae, ModelConfigs.builtIn(plan.family()).scheduler(), plan.sizes(), plan.repeats(),
                    results, progress);
        }
        if (plan.checkpointLoad()) {
            results.put("load UNet checkpoint (fp16 safetensors -> fp32), just written: read from the page cache, as a second load is",
                    f("%.2f s", loadTime(unet, progress)));
            results.put("peak resident memory, also holding a second UNet for the load", f("%.2f GiB", ProcessMemory.peakResidentGiB()));
        }
        return results;
    }

    /** A built-in family's model with the benchmark's random weights (the same seeds every run). */
    private record RandomModel(UNet2DConditionModel unet, ClipTextModel text, AutoencoderKL vae) {
        static RandomModel of(String family) {
            ModelConfigs configs = ModelConfigs.builtIn(family);
            RandomModel m = new RandomModel(UNet2DConditionModel.create(configs.unet()), ClipTextModel.create(configs.textEncoder()),
                    AutoencoderKL.create(configs.vae()));
            Weights.initRandom(m.unet(), 1);
            Weights.initRandom(m.text(), 2);
            Weights.initRandom(m.vae(), 3);
            return m;
        }
    }

    /**
     * Writes the benchmark's random-weight model of {@code family} in fp16 as {@code out}, as {@code convert} writes a
     * model: one file in the original layout for a name ending in .safetensors, else a new diffusers folder (without a
     * tokenizer vocabulary). Other engines can then be timed on the same shapes and weights.
     */
    public static ModelExport.Written saveRandomModel(String family, Path out, Progress progress) throws IOException {
        if (Files.exists(out)) throw new IOException(out + " already exists: give a new name for the random-weight model");
        ModelConfigs configs = ModelConfigs.builtIn(family);
        RandomModel model = RandomModel.of(family);
        ResolvedModel m = new ResolvedModel(Path.of("random-" + family), CheckpointLayout.DIFFUSERS_FOLDER, family, configs.origin(),
                configs.unet(), configs.vae(), configs.textEncoder(), configs.scheduler(), configs.tokenizer(), Optional.empty(),
                Weights.asStateDict(model.unet(), "the benchmark's random UNet"), Weights.asStateDict(model.vae(), "the benchmark's random VAE"), Weights.asStateDict(model.text(), "the benchmark's random text encoder"), false,
                Optional.empty(), List.of("the benchmark's random weights"));
        return ModelExport.targetOf(out) == ModelExport.Target.SINGLE_FILE
                ? ModelExport.singleFile(m, out, Safetensors.StoredType.F16, progress)
                : ModelExport.diffusersFolder(m, out, Safetensors.StoredType.F16, progress);
    }

    private static void save(Map<String, Param> parameters, Path file) throws IOException {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        parameters.forEach((name, p) -> tensors.put(name, p.t()));
        Safetensors.write(file, tensors, Map.of(), Safetensors.StoredType.F16);
    }

    private static double matmulRate() {
        try (Scope s = Scope.inference()) {
            Tensor a = torch.randn(1024, 1024), b = torch.randn(1024, 1024);
            double med = median(timed(10, () -> a.matmul(b)));
            return 2.0 * 1024 * 1024 * 1024 / med / 1e9;
        }
    }

    private static double loadTime(UNet2DConditionModel unet, Progress progress) throws IOException {
        try (AtomicFiles.ScratchFolder scratch = AtomicFiles.ScratchFolder.create("perfusion-bench")) {
            Path file = scratch.dir().resolve("unet.safetensors");
            save(unet.namedParameters(), file);
            progress.message(f("wrote a %.2f GB fp16 UNet checkpoint to time loading", Files.size(file) / 1e9));
            UNet2DConditionModel fresh = UNet2DConditionModel.create(unet.config());
            long t0 = System.nanoTime();
            Weights.load(fresh, Safetensors.open(file), "", Ops.cpu(), torch.ScalarType.Float, "UNet");
            return secondsSince(t0);
        }
    }

    static String f(String fmt, Object... args) { return String.format(Locale.ROOT, fmt, args); }
}
