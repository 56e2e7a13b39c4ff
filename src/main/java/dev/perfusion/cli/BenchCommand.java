package dev.perfusion.cli;

import dev.perfusion.bench.EngineBench;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "bench", mixinStandardHelpOptions = true,
        description = {"Time the engine on a random-weight SD-shaped model.",
                "Nothing to download. Median seconds per guided denoising step (UNet, batch 2), text encoder and VAE decode time, checkpoint "
                        + "load time, peak resident memory, and the fraction of the machine's fp32 matmul rate a UNet step reaches."})
final class BenchCommand implements Callable<Integer> {
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

    @Override
    public Integer call() throws Exception {
        EngineBench.Plan plan = new EngineBench.Plan(family, sizes, repeats, !skipVae, !skipLoad, perfusion);
        Map<String, String> results = EngineBench.run(plan, new TerminalProgress(System.out));
        System.out.println();
        System.out.println("| measure | value |");
        System.out.println("|---|---|");
        results.forEach((k, v) -> System.out.println("| " + k + " | " + v + " |"));
        return 0;
    }
}
