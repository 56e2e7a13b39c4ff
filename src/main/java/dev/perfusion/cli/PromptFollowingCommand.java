package dev.perfusion.cli;

import dev.perfusion.eval.AttributeClassifier;
import dev.perfusion.eval.PromptFollowing;
import dev.perfusion.io.AtomicFiles;
import dev.perfusion.io.ImageGrid;
import dev.perfusion.io.Png;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.world.Bundled;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.awt.image.BufferedImage;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "prompt-following", mixinStandardHelpOptions = true,
        description = "Measure how often a world model's samples show what their prompts say (per attribute, judged by the attribute classifier).")
final class PromptFollowingCommand implements Callable<Integer> {
    @Mixin ModelOptions model;
    @Option(names = "--classifier", paramLabel = "FILE", description = "The judge (default: the bundled one).") Path classifier;
    @Option(names = "--samples", defaultValue = "240", description = "(default: ${DEFAULT-VALUE})") int samples;
    @Option(names = "--steps", defaultValue = "25", description = "DDIM steps (default: ${DEFAULT-VALUE}).") int steps;
    @Option(names = "--guidance", defaultValue = "5", description = "(default: ${DEFAULT-VALUE})") double guidance;
    @Option(names = "--seed", defaultValue = "11", description = "(default: ${DEFAULT-VALUE})") long seed;
    @Option(names = "--out", defaultValue = "prompt-following", paramLabel = "DIR", description = "Report folder: report.md and samples.png (default: ${DEFAULT-VALUE}).") Path out;

    @Override
    public Integer call() throws Exception {
        if (samples < 1) throw new IllegalArgumentException("--samples must be at least 1");
        AttributeClassifier judge = AttributeClassifier.load(classifier != null ? classifier : Bundled.classifier());
        TerminalProgress progress = new TerminalProgress(System.out);
        long started = System.nanoTime();
        StableDiffusion sd = model.load(progress);
        PromptFollowing.Report r = PromptFollowing.measure(sd, judge, samples, steps, guidance, seed, progress);
        Files.createDirectories(out);
        String md = String.format(Locale.ROOT, "# Prompt following of %s%n%n%d samples, DDIM %d steps, guidance %.1f, seed %d.%n%n%s",
                sd.name, r.samples(), steps, guidance, seed, r.markdown());
        AtomicFiles.write(out.resolve("report.md"), md.getBytes(StandardCharsets.UTF_8));
        List<List<BufferedImage>> rows = new ArrayList<>();
        List<String> labels = new ArrayList<>();
        for (int i = 0; i < r.images().size(); i += 4) {
            rows.add(r.images().subList(i, Math.min(i + 4, r.images().size())));
            labels.add(String.join("\n", r.prompts().subList(i, Math.min(i + 4, r.prompts().size()))));
        }
        // one prompt a line, in the order of the row's pictures
        Png.write(out.resolve("samples.png"), ImageGrid.of(rows, labels, List.of(), 128, 330), Map.of("prompts", String.join("\n", r.prompts())));
        System.out.print(r.markdown());
        progress.message(String.format(Locale.ROOT, "wrote %s in %s", out, TerminalProgress.formatSeconds((System.nanoTime() - started) / 1e9)));
        return 0;
    }
}
