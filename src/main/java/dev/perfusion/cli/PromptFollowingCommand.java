package dev.perfusion.cli;

import dev.perfusion.eval.AttributeClassifier;
import dev.perfusion.eval.ObjectCounter;
import dev.perfusion.eval.PairPlacement;
import dev.perfusion.eval.PromptFollowing;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.world.Bundled;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "prompt-following", mixinStandardHelpOptions = true,
        description = {"Measure how often samples show what their prompts say.",
                "A world model's samples, per attribute (category, scene, placement, colour, size), as the attribute classifier judges them."})
final class PromptFollowingCommand implements Callable<Integer> {
    @Mixin ModelOptions model;
    @Mixin SideSteeringOption sideSteering;
    @Option(names = "--classifier", paramLabel = "FILE", description = "The judge (default: the bundled one).") Path classifier;
    @Option(names = "--count", defaultValue = "240", description = "Pictures to draw, one per random caption (default: ${DEFAULT-VALUE}).") int count;
    @Option(names = "--steps", defaultValue = "25", description = "Denoising (DDIM) steps per picture (default: ${DEFAULT-VALUE}).") int steps;
    @Option(names = "--guidance", defaultValue = "5", description = "Classifier-free guidance scale (default: ${DEFAULT-VALUE}).") double guidance;
    @Option(names = "--seed", defaultValue = "11", description = "Seed of the random captions and the pictures' noise (default: ${DEFAULT-VALUE}).") long seed;
    @Option(names = "--pairs", defaultValue = "64", description = "Also draw this many two-object prompts (\"a A on the left and a B on the right ...\") "
            + "and count the pictures with each object on its side, as the classifier reads each half; 0 for none (default: ${DEFAULT-VALUE}).") int pairs;
    @Option(names = "--out", defaultValue = "prompt-following", paramLabel = "DIR", description = "Report folder: report.md and samples.png (default: ${DEFAULT-VALUE}).") Path out;

    @Override
    public Integer call() throws Exception {
        if (count < 1) throw new IllegalArgumentException("--count must be at least 1, got " + count);
        if (pairs < 0) throw new IllegalArgumentException("--pairs must be at least 0, got " + pairs);
        double steering = sideSteering.check();
        FileChecks.writableFolder(out); // the report is written after every picture is drawn and judged
        AttributeClassifier judge = AttributeClassifier.load(classifier != null ? classifier : Bundled.classifier());
        ObjectCounter counter = ObjectCounter.load(Bundled.objectCounter());
        TerminalProgress progress = new TerminalProgress(System.out);
        long started = System.nanoTime();
        StableDiffusion sd = model.load(progress);
        PromptFollowing.Report r = PromptFollowing.measure(sd, judge, counter, count, steps, guidance, steering, seed, progress);
        System.out.print(r.markdown());
        String judgeName = classifier != null ? "the attribute classifier " + classifier : "the bundled attribute classifier";
        // written now, so that a failure among the pairs loses them only; until they are done the report says they are not
        PromptFollowing.write(r, out, sd.name, judgeName, steps, guidance, steering, seed,
                pairs > 0 ? "\nPairs on their sides (" + pairs + " prompts): not measured yet; this line is replaced when they are.\n" : "");
        if (pairs > 0) {
            PairPlacement.Result placed = PairPlacement.measure(sd, judge, pairs, steps, guidance, steering, seed, progress);
            System.out.println();
            System.out.println(placed.summary());
            PromptFollowing.write(r, out, sd.name, judgeName, steps, guidance, steering, seed, "\n" + placed.summary() + "\n");
        }
        progress.message(String.format(Locale.ROOT, "wrote %s in %s", out, TerminalProgress.formatSeconds((System.nanoTime() - started) / 1e9)));
        return 0;
    }
}
