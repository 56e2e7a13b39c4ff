package dev.perfusion.io.pickle;

import dev.perfusion.io.Safetensors;
import dev.perfusion.io.layout.BlockTable;
import dev.perfusion.io.layout.LdmTextEncoder;
import dev.perfusion.io.layout.LdmUnet;
import dev.perfusion.io.layout.LdmVae;
import dev.perfusion.io.layout.ModelConfigs;
import dev.perfusion.io.layout.ModelSource;
import dev.perfusion.io.layout.ResolvedModel;
import dev.perfusion.nn.Module;
import dev.perfusion.nn.Weights;
import dev.perfusion.tensor.Ops;
import dev.perfusion.text.ClipTextModel;
import dev.perfusion.unet.UNet2DConditionModel;
import dev.perfusion.util.ProcessMemory;
import dev.perfusion.vae.AutoencoderKL;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The README's load-time report, run by hand: an SD 1.5-shaped full EMA checkpoint of random weights (fp32, the UNet
 * twice: model.* and model_ema.*, 7.7 GB) written as a torch.save zip .ckpt and as .safetensors holding the same
 * tensors; then, one JVM per file, the time and peak resident memory of resolving it and loading the three
 * components as fp32 modules.
 * <pre>
 *   mvn test -Dtest='CheckpointLoadReport#write' -Dperfusion.report.dir=DIR
 *   mvn test -Dtest='CheckpointLoadReport#load' -Dperfusion.report.dir=DIR -Dperfusion.report.load=DIR/sd15-ema.ckpt
 * </pre>
 */
@EnabledIfSystemProperty(named = "perfusion.report.dir", matches = ".+")
class CheckpointLoadReport {
    private static final Path DIR = Path.of(System.getProperty("perfusion.report.dir", "."));

    /** One LDM tensor: its name, shape and the seed of its random values. */
    private record Spec(String name, long[] shape, long seed) {}

    /** The tensors of an SD 1.5 LDM checkpoint with EMA copies of the UNet, from the built-in configs' shapes. */
    private static List<Spec> specs() {
        ModelConfigs sd15 = ModelConfigs.builtIn("sd15");
        List<Spec> out = new ArrayList<>();
        long seed = 1;
        Module text = ClipTextModel.create(sd15.textEncoder());
        for (var e : text.namedParameters().entrySet()) {
            out.add(new Spec(LdmTextEncoder.CLIP_PREFIX + e.getKey(), e.getValue().shape(), seed++));
        }
        BlockTable unetTable = LdmUnet.blocks(sd15.unet());
        List<Spec> unet = new ArrayList<>();
        for (var e : UNet2DConditionModel.create(sd15.unet()).namedParameters().entrySet()) {
            unet.add(new Spec(LdmUnet.PREFIX + unetTable.ldmName(e.getKey()).name(), e.getValue().shape(), seed++));
        }
        out.addAll(unet);
        for (Spec s : unet) {
            String ema = "model_ema." + s.name().substring("model.".length()).replace(".", "");
            out.add(new Spec(ema, s.shape(), seed++));
        }
        BlockTable vaeTable = LdmVae.blocks(sd15.vae());
        for (var e : AutoencoderKL.create(sd15.vae()).namedParameters().entrySet()) {
            BlockTable.Renamed r = vaeTable.ldmName(e.getKey());
            long[] shape = e.getValue().shape();
            if (r.block().kind() == BlockTable.Kind.VAE_ATTENTION && shape.length == 2) shape = new long[] {shape[0], shape[1], 1, 1};
            out.add(new Spec(LdmVae.PREFIX + r.name(), shape, seed++));
        }
        return out;
    }

    private static Tensor value(Spec s) {
        torch.manual_seed(s.seed());
        return torch.randn(s.shape()).mul(new org.bytedeco.pytorch.Scalar(0.02));
    }

    @Test
    void write() throws IOException {
        Files.createDirectories(DIR);
        List<Spec> specs = specs();
        long params = specs.stream().mapToLong(s -> Ops.numel(s.shape())).sum();
        Path ckpt = DIR.resolve("sd15-ema.ckpt"), st = DIR.resolve("sd15-ema.safetensors");
        long t0 = System.nanoTime();
        java.util.Iterator<Spec> it = specs.iterator();
        TorchSaveWriter.zip(ckpt, new java.util.Iterator<>() {
            @Override public boolean hasNext() { return it.hasNext(); }

            @Override public TorchSaveWriter.Named next() {
                Spec s = it.next();
                return new TorchSaveWriter.Named(s.name(), value(s));
            }
        }, TorchSaveWriter.Layout.lightning(840000));
        long t1 = System.nanoTime();
        List<Safetensors.Pending> pending = new ArrayList<>();
        for (Spec s : specs) pending.add(new Safetensors.Pending(s.name(), s.shape(), () -> value(s)));
        Safetensors.write(st, pending, java.util.Map.of("format", "pt"), Safetensors.StoredType.F32);
        long t2 = System.nanoTime();
        report(String.format(Locale.ROOT, "wrote %d tensors, %,d parameters: %s %.2f GB in %.0f s, %s %.2f GB in %.0f s",
                specs.size(), params, ckpt.getFileName(), Files.size(ckpt) / 1e9, (t1 - t0) / 1e9, st.getFileName(),
                Files.size(st) / 1e9, (t2 - t1) / 1e9));
    }

    @Test
    void load() throws IOException {
        Path file = Path.of(System.getProperty("perfusion.report.load"));
        long t0 = System.nanoTime();
        ResolvedModel m = ModelSource.resolve(file);
        long t1 = System.nanoTime();
        Module text = ClipTextModel.create(m.textEncoderConfig());
        Weights.load(text, m.textEncoderWeights(), "", Ops.cpu(), torch.ScalarType.Float, "text encoder");
        Module unet = UNet2DConditionModel.create(m.unetConfig());
        Weights.load(unet, m.unetWeights(), "", Ops.cpu(), torch.ScalarType.Float, "UNet");
        Module vae = AutoencoderKL.create(m.vaeConfig());
        Weights.load(vae, m.vaeWeights(), "", Ops.cpu(), torch.ScalarType.Float, "VAE");
        long t2 = System.nanoTime();
        long loaded = text.parameterCount() + unet.parameterCount() + vae.parameterCount();
        report(String.format(Locale.ROOT, "%s (%.2f GB, family %s, %s): resolve %.2f s, load %,d parameters as fp32 %.1f s, total %.1f s;"
                        + " peak resident %.2f GiB (%s)", file.getFileName(), Files.size(file) / 1e9, m.family(), String.join("; ", m.notes()),
                (t1 - t0) / 1e9, loaded, (t2 - t1) / 1e9, (t2 - t0) / 1e9, ProcessMemory.peakResidentGiB(), rss()));
    }

    /** The resident memory now, split as Linux counts it: anonymous (heap, tensors) and file-backed (mapped files). */
    private static String rss() throws IOException {
        List<String> parts = new ArrayList<>();
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("RssAnon:") || line.startsWith("RssFile:")) parts.add(line.replaceAll("\\s+", " "));
        }
        return "now " + String.join(", ", parts);
    }

    private static void report(String line) throws IOException {
        System.out.println(line);
        Files.writeString(DIR.resolve("report.txt"), line + "\n", StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }
}
