package dev.perfusion.cli;

import dev.perfusion.io.Safetensors;
import dev.perfusion.io.layout.ModelConfigs;
import dev.perfusion.nn.Param;
import dev.perfusion.nn.Weights;
import dev.perfusion.tensor.FlopCounter;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.text.ClipTextModel;
import dev.perfusion.unet.UNet2DConditionModel;
import dev.perfusion.vae.AutoencoderKL;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "bench", mixinStandardHelpOptions = true,
        description = {"Benchmark the engine on an SD 1.5-shaped model with random weights (nothing to download):",
                "median seconds per guided denoising step (UNet, batch 2), text encoder and VAE decode time, checkpoint "
                        + "load time, peak resident memory, and the fraction of the machine's fp32 matmul rate a UNet step reaches."})
final class BenchCommand implements Callable<Integer> {
    @Option(names = "--family", defaultValue = "sd15", description = "Built-in config to build: sd15, sd21-base (default: ${DEFAULT-VALUE}).")
    String family;
    @Option(names = "--sizes", split = ",", defaultValue = "256,512", description = "Image sizes in pixels (default: ${DEFAULT-VALUE}).")
    int[] sizes;
    @Option(names = "--repeats", defaultValue = "3", description = "Timed UNet steps per size, after one warm-up (default: ${DEFAULT-VALUE}).")
    int repeats;
    @Option(names = "--skip-load", description = "Skip the checkpoint save/load timing (it writes ~1.7 GB to a temp folder).")
    boolean skipLoad;
    @Option(names = "--skip-vae", description = "Skip the VAE decode timing.")
    boolean skipVae;
    @Option(names = "--perfusion", description = "Also measure Perfusion: concept file size, the edit's cost per UNet step, training step time.")
    boolean perfusion;

    @Override
    public Integer call() throws Exception {
        TerminalProgress out = new TerminalProgress(System.out);
        Map<String, String> results = new LinkedHashMap<>();
        results.put("threads", Integer.toString(torch.get_num_threads()));
        double matmulGflops = matmulRate();
        results.put("fp32 matmul 1024^3", f("%.0f GFLOP/s", matmulGflops));
        out.message("fp32 matmul rate: " + results.get("fp32 matmul 1024^3"));

        ModelConfigs configs = ModelConfigs.builtIn(family);
        long t0 = System.nanoTime();
        UNet2DConditionModel unet = UNet2DConditionModel.create(configs.unet());
        ClipTextModel text = ClipTextModel.create(configs.textEncoder());
        AutoencoderKL vae = AutoencoderKL.create(configs.vae());
        Weights.initRandom(unet, 1);
        Weights.initRandom(text, 2);
        Weights.initRandom(vae, 3);
        out.message(f("built %s with random weights in %.1fs: UNet %,d, text encoder %,d, VAE %,d parameters", family,
                secondsSince(t0), unet.parameterCount(), text.parameterCount(), vae.parameterCount()));

        try (Scope s = Scope.inference()) {
            Tensor ids = Ops.fromLongs(new long[2 * 77], 2, 77);
            double textSeconds = median(timed(3, () -> text.encode(ids)));
            results.put("text encoder, batch 2", f("%.3f s", textSeconds));
            Tensor context = text.encode(ids);
            for (int size : sizes) {
                long latent = size / 8;
                Tensor sample = Ops.ones(2, unet.config().inChannels(), latent, latent);
                Tensor t = Ops.fromFloats(new float[] {500f}, 1);
                FlopCounter.start();
                try (Scope warm = Scope.inference()) { unet.forward(sample, t, context); }
                long flops = FlopCounter.stop();
                List<Double> times = timed(repeats, () -> unet.forward(sample, t, context));
                double med = median(times);
                double rate = flops / med / 1e9;
                results.put(f("UNet step %dx%d, batch 2", size, size), f("%.2f s/step (%.0f GFLOP, %.0f GFLOP/s = %.0f%% of matmul rate)",
                        med, flops / 1e9, rate, 100 * rate / matmulGflops));
                out.message(f("UNet %dx%d batch 2: median %.2f s/step over %d (%s)", size, size, med, repeats, times));
            }
            if (!skipVae) {
                int size = sizes[sizes.length - 1];
                Tensor z = Ops.ones(1, vae.config().latentChannels(), size / 8, size / 8);
                double vaeSeconds = median(timed(1, () -> vae.decode(z)));
                results.put(f("VAE decode %dx%d", size, size), f("%.2f s", vaeSeconds));
            }
        }
        results.put("peak resident memory: model + steps + VAE decode", f("%.2f GiB", peakRssGiB()));
        if (perfusion) {
            PerfusionBench.run(unet, text, vae, configs.scheduler(), sizes,
                    repeats, results, out);
        }
        if (!skipLoad) {
            results.put("load UNet checkpoint (fp16 safetensors -> fp32)", f("%.2f s", loadTime(unet, out)));
            results.put("peak resident memory, also holding a second UNet for the load", f("%.2f GiB", peakRssGiB()));
        }

        System.out.println();
        System.out.println("| measure | value |");
        System.out.println("|---|---|");
        results.forEach((k, v) -> System.out.println("| " + k + " | " + v + " |"));
        return 0;
    }

    private static double matmulRate() {
        try (Scope s = Scope.inference()) {
            Tensor a = torch.randn(1024, 1024), b = torch.randn(1024, 1024);
            double med = median(timed(10, () -> a.matmul(b)));
            return 2.0 * 1024 * 1024 * 1024 / med / 1e9;
        }
    }

    private static double loadTime(UNet2DConditionModel unet, TerminalProgress out) throws Exception {
        Path dir = Files.createTempDirectory("perfusion-bench");
        Path file = dir.resolve("unet.safetensors");
        try {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (Map.Entry<String, Param> e : unet.namedParameters().entrySet()) tensors.put(e.getKey(), e.getValue().t());
            Safetensors.write(file, tensors, Map.of(), Safetensors.StoredType.F16);
            out.message(f("wrote a %.2f GB fp16 UNet checkpoint to time loading", Files.size(file) / 1e9));
            UNet2DConditionModel fresh = UNet2DConditionModel.create(unet.config());
            long t0 = System.nanoTime();
            Weights.load(fresh, Safetensors.open(file), "", Ops.cpu(), torch.ScalarType.Float, "UNet");
            return secondsSince(t0);
        } finally {
            Files.deleteIfExists(file);
            Files.deleteIfExists(dir);
        }
    }

    static List<Double> timed(int n, Runnable work) {
        List<Double> times = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            try (Scope s = Scope.inference()) {
                long t0 = System.nanoTime();
                work.run();
                times.add(secondsSince(t0));
            }
        }
        return times;
    }

    static double median(List<Double> xs) {
        double[] v = xs.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
    }

    static double peakRssGiB() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) return Long.parseLong(line.replaceAll("\\D+", "")) / 1024.0 / 1024.0;
            }
        } catch (Exception ignored) {
            // not Linux: report nothing rather than fail the benchmark
        }
        return Double.NaN;
    }

    private static double secondsSince(long t0) { return (System.nanoTime() - t0) / 1e9; }

    private static String f(String fmt, Object... args) { return String.format(Locale.ROOT, fmt, args); }

}
