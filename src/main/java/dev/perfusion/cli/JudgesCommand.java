package dev.perfusion.cli;

import dev.perfusion.eval.AttributeClassifier;
import dev.perfusion.eval.InstanceEncoder;
import dev.perfusion.world.Bundled;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "judges", mixinStandardHelpOptions = true,
        description = {"Train the judges of world pictures; print their accuracy.",
                "The two judges of generated world pictures, with their accuracy on held-out pictures: the attribute classifier "
                        + "(category, scene, placement, colour, size, objects present) and the instance encoder (which particular teddy is this?)."})
final class JudgesCommand implements Callable<Integer> {
    /** The two judges: the attribute classifier and the instance encoder. */
    enum Judge { CLASSIFIER, INSTANCES }

    @Option(names = "--only", converter = Choices.Judge.class, completionCandidates = Choices.Judge.class,
            description = "Train one judge only: ${COMPLETION-CANDIDATES} (the instance encoder) (default: both).") Judge only;
    @Option(names = "--out", paramLabel = "DIR", description = "Where to write them (default: the bundled models/ folder).") Path out;
    @Option(names = "--classifier-steps", defaultValue = "2000", description = "Training steps of the attribute classifier (default: ${DEFAULT-VALUE}).") int classifierSteps;
    @Option(names = "--encoder-steps", defaultValue = "3000", description = "Training steps of the instance encoder (default: ${DEFAULT-VALUE}).") int encoderSteps;
    @Option(names = "--instances", defaultValue = "400", description = "Training instances the encoder learns to tell apart (default: ${DEFAULT-VALUE}).") int instances;
    @Option(names = "--seed", defaultValue = "7", description = "Seed of the training pictures and of the judges' initial weights (default: ${DEFAULT-VALUE}).") long seed;

    @Override
    public Integer call() throws Exception {
        TerminalProgress progress = new TerminalProgress(System.out);
        long started = System.nanoTime();
        if (only == null || only == Judge.CLASSIFIER) {
            Path target = out != null ? out.resolve(Bundled.classifier().getFileName()) : Bundled.classifier();
            AttributeClassifier.Trained t = AttributeClassifier.train(classifierSteps, 32, seed, progress);
            t.save(target);
            System.out.println("| attribute | unseen pictures | held-out instances |");
            System.out.println("|---|---|---|");
            for (AttributeClassifier.Attribute a : AttributeClassifier.Attribute.values()) {
                System.out.printf(Locale.ROOT, "| %s | %.1f%% | %.1f%% |%n", a.label(), 100 * t.accuracy().unseenPictures().get(a),
                        100 * t.accuracy().heldOutInstances().get(a));
            }
            System.out.printf(Locale.ROOT, "| both objects of a pair present, nothing else | %.1f%% | |%n", 100 * t.accuracy().pairPresence());
            progress.message("wrote " + target);
        }
        if (only == null || only == Judge.INSTANCES) {
            Path target = out != null ? out.resolve(Bundled.instanceEncoder().getFileName()) : Bundled.instanceEncoder();
            InstanceEncoder.Trained t = InstanceEncoder.train(encoderSteps, 32, instances, seed, progress);
            t.save(target);
            System.out.printf(Locale.ROOT, "instance retrieval (top-1 of the gallery): held-out concepts %.1f%%, unseen instances %.1f%%%n",
                    100 * t.accuracy().heldOutConcepts(), 100 * t.accuracy().unseenInstances());
            progress.message("wrote " + target);
        }
        progress.message(String.format(Locale.ROOT, "done in %s", TerminalProgress.formatSeconds((System.nanoTime() - started) / 1e9)));
        return 0;
    }
}
