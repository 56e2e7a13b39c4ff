package dev.perfusion.cli;

import dev.perfusion.bench.EngineBench;
import dev.perfusion.io.layout.ModelExport;
import org.bytedeco.pytorch.global.torch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "bench", mixinStandardHelpOptions = true,
        description = {"Time the engine on a random-weight SD-shaped model.",
                "Nothing to download. Median seconds per guided denoising step (UNet, batch 2), text encoder and VAE decode time, checkpoint "
                        + "load time, peak resident memory, and the fraction of the machine's fp32 matmul rate a UNet step reaches."})
final class BenchCommand implements Callable<Integer> {
    @Spec CommandSpec spec;
    @Option(names = "--family", defaultValue = "sd15", converter = Choices.Family.class, completionCandidates = Choices.Family.class,
            description = "The built-in family whose configs give the model's shapes: ${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE}).")
    String family;
    @Option(names = "--sizes", split = ",", defaultValue = "256,512", description = "Image sizes in pixels (default: ${DEFAULT-VALUE}).")
    List<Integer> sizes;
    @Option(names = "--repeats", defaultValue = "3", description = "Timed UNet steps per size, after one warm-up (default: ${DEFAULT-VALUE}).")
    int repeats;
    @Option(names = "--skip-load", description = "Skip the checkpoint save/load timing (it writes ~1.7 GB to a temp folder).")
    boolean skipLoad;
    @Option(names = "--skip-vae", description = "Skip the VAE decode timing.")
    boolean skipVae;
    @Option(names = "--perfusion", description = "Also measure Perfusion: concept file size, the edit's cost per UNet step, training step time.")
    boolean perfusion;
    @Option(names = "--precision", defaultValue = "fp32", converter = Choices.Precision.class, completionCandidates = Choices.Precision.class,
            description = "What the UNet and VAE compute in: ${COMPLETION-CANDIDATES}; with --training, the UNet while the concept trains "
                    + "and while pretraining trains it (pretrain --precision) (default: ${DEFAULT-VALUE}; auto is fp32 here).")
    ModelOptions.PrecisionName precision;
    @Option(names = "--training", description = "Measure training on the bundled model instead: the demo concept's training (steps/s "
            + "near its start and end, time per phase) and pretraining steps (pictures/s, time per phase).")
    boolean training;
    @Option(names = "--train-steps", defaultValue = "400", description = "With --training: concept training steps (default: ${DEFAULT-VALUE}, the demo's).")
    int trainSteps;
    @Option(names = "--pretrain-steps", defaultValue = "60", description = "With --training: pretraining steps, 0 for none (default: ${DEFAULT-VALUE}).")
    int pretrainSteps;
    @Option(names = "--model", paramLabel = "DIR", description = "With --training: the world model to train on, on its recorded recipe "
            + "(default: the bundled one); another checkout's models/world measures this code on that checkout's recipe.")
    java.nio.file.Path model;

    @Option(names = "--save-model", paramLabel = "OUT", description = "Time nothing: write the benchmark's random-weight model of "
            + "--family in fp16, as convert writes a model (OUT.safetensors: one file in the original layout; else a new diffusers "
            + "folder), to time another engine on the same shapes and weights.")
    java.nio.file.Path saveModel;

    /** Options of the engine benchmark, of --training, and of --save-model (which times nothing). */
    private static final List<String> ENGINE = List.of("--family", "--sizes", "--repeats", "--skip-load", "--skip-vae", "--perfusion"),
            TRAINING = List.of("--training", "--train-steps", "--pretrain-steps", "--model"),
            SAVE_MODEL = List.of("--save-model", "--family");

    /** An option of another mode than the one that runs would be accepted and ignored, its figures missing from the table. */
    private void refuseOptionsOfAnotherMode() {
        var parsed = spec.commandLine().getParseResult();
        String mode = saveModel != null ? "--save-model (it times nothing)" : training ? "--training" : "the engine benchmark (without --training)";
        List<String> own = saveModel != null ? SAVE_MODEL : training ? TRAINING : ENGINE;
        List<String> ignored = spec.options().stream().map(o -> o.longestName())
                .filter(n -> !own.contains(n) && !n.equals("--precision") && !n.equals("--help") && !n.equals("--version"))
                .filter(parsed::hasMatchedOption).toList();
        if (saveModel != null && parsed.hasMatchedOption("--precision")) ignored = java.util.stream.Stream.concat(ignored.stream(), java.util.stream.Stream.of("--precision")).toList();
        if (!ignored.isEmpty()) {
            throw new IllegalArgumentException(String.join(", ", ignored) + (ignored.size() == 1 ? " does" : " do") + " nothing in " + mode
                    + ": leave " + (ignored.size() == 1 ? "it" : "them") + " out, or run the mode " + (ignored.size() == 1 ? "it belongs" : "they belong") + " to");
        }
    }

    @Override
    public Integer call() throws Exception {
        if (model != null && !training && saveModel == null) {
            throw new IllegalArgumentException("--model is the world model of --training; the engine benchmark's model is --family's random one");
        }
        refuseOptionsOfAnotherMode();
        if (saveModel != null) {
            ModelExport.Written w = EngineBench.saveRandomModel(family, saveModel, new TerminalProgress(System.out));
            System.out.printf(java.util.Locale.ROOT, "wrote %s: %s with the benchmark's random weights (fp16, %,d tensors, %.2f GB)%n",
                    w.target(), family, w.tensors(), w.bytes() / 1e9);
            return 0;
        }
        if (!training && repeats < 1) throw new IllegalArgumentException("--repeats must be at least 1, got " + repeats);
        if (!training) for (int size : sizes) if (size < 8 || size % 8 != 0) throw new IllegalArgumentException("--sizes: each a multiple of 8 pixels, got " + size);
        if (training && trainSteps < 20) throw new IllegalArgumentException("--train-steps must be at least 20 to time a rate, got " + trainSteps);
        if (model != null && !java.nio.file.Files.isRegularFile(model.resolve("recipe.json"))) {
            throw new IllegalArgumentException("--model " + model + ": not a world model trained by pretrain (no recipe.json there)");
        }
        if (training && pretrainSteps != 0 && pretrainSteps < 20) {
            throw new IllegalArgumentException("--pretrain-steps must be 0 or at least 20 to time a rate, got " + pretrainSteps);
        }
        torch.ScalarType dtype = switch (precision) {
            case AUTO, FP32 -> torch.ScalarType.Float;
            case BF16 -> torch.ScalarType.BFloat16;
            case FP16 -> throw new IllegalArgumentException("--precision fp16: the benchmark runs on the CPU, which has no fast fp16 path; use bf16");
        };
        if (dtype != torch.ScalarType.Float && perfusion) {
            throw new IllegalArgumentException("--precision " + precision.name().toLowerCase(java.util.Locale.ROOT)
                    + ": --perfusion measures fp32 only (--training measures concept training in bf16 too)");
        }
        EngineBench.Plan plan = new EngineBench.Plan(family, sizes, repeats, !skipVae, !skipLoad, perfusion,
                training ? trainSteps : 0, pretrainSteps, dtype, model);
        Map<String, String> results = EngineBench.run(plan, new TerminalProgress(System.out));
        System.out.println();
        System.out.println("| measure | value |");
        System.out.println("|---|---|");
        results.forEach((k, v) -> System.out.println("| " + k + " | " + v + " |"));
        return 0;
    }
}
