package dev.perfusion.cli;

import dev.perfusion.eval.AttributeClassifier;
import dev.perfusion.eval.InstanceEncoder;
import dev.perfusion.eval.ObjectCounter;
import dev.perfusion.eval.WorldClip;
import dev.perfusion.pretrain.BaseModelRecipe;
import dev.perfusion.pretrain.Pretrainer;
import dev.perfusion.world.Bundled;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "judges", mixinStandardHelpOptions = true,
        description = {"Train the judges of world pictures; print their accuracy.",
                "The judges of generated world pictures, with their accuracy on held-out pictures: the attribute classifier "
                        + "(category, scene, placement, colour, size, objects present), the instance encoder (which particular teddy is this?) "
                        + "the world's CLIP (the paper's CLIP-I and CLIP-T scores; the towers of the first stage of pretrain --recipe frozen-text) "
                        + "and the object counter (one object in a picture, or two: an object drawn twice)."})
final class JudgesCommand implements Callable<Integer> {
    /** The judges: the attribute classifier, the instance encoder, the world's CLIP and the object counter. */
    enum Judge { CLASSIFIER, INSTANCES, CLIP, COUNTER }

    @Option(names = "--only", converter = Choices.Judge.class, completionCandidates = Choices.Judge.class,
            description = "Train one judge only: ${COMPLETION-CANDIDATES} (instances: the instance encoder) (default: all).") Judge only;
    @Option(names = "--out", paramLabel = "DIR", description = "Where to write them (default: the bundled models/ folder).") Path out;
    @Option(names = "--classifier-steps", defaultValue = "2000", description = "Training steps of the attribute classifier (default: ${DEFAULT-VALUE}).") int classifierSteps;
    @Option(names = "--encoder-steps", defaultValue = "3000", description = "Training steps of the instance encoder (default: ${DEFAULT-VALUE}).") int encoderSteps;
    @Option(names = "--instances", defaultValue = "400", description = "Training instances the encoder learns to tell apart (default: ${DEFAULT-VALUE}).") int instances;
    @Option(names = "--clip-steps", defaultValue = "600", description = "Contrastive steps of the world's CLIP, batches of 64 (default: ${DEFAULT-VALUE}, "
            + "the frozen-text recipe's: the same towers as its first stage).") int clipSteps;
    @Option(names = "--counter-steps", defaultValue = "1500", description = "Training steps of the object counter (default: ${DEFAULT-VALUE}).") int counterSteps;
    @Option(names = "--seed", defaultValue = "7", description = "Seed of the training pictures and of the judges' initial weights "
            + "(default: ${DEFAULT-VALUE}); the world's CLIP keeps the frozen-text recipe's seed, so that it is the towers of that recipe's first stage.") long seed;

    @Override
    public Integer call() throws Exception {
        // a judge of no steps would replace the bundled one with its untrained weights
        for (Map.Entry<String, Integer> steps : Map.of("--classifier-steps", classifierSteps, "--encoder-steps", encoderSteps, "--clip-steps", clipSteps,
                "--counter-steps", counterSteps, "--instances", instances).entrySet()) {
            if (steps.getValue() < 1) throw new IllegalArgumentException(steps.getKey() + " must be at least 1, got " + steps.getValue());
        }
        FileChecks.writableFolder(out != null ? out : Bundled.classifier().toAbsolutePath().getParent()); // before hours of training
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
        if (only == null || only == Judge.CLIP) {
            Path target = out != null ? out.resolve(Bundled.worldClip().getFileName()) : Bundled.worldClip();
            Path work = target.resolveSibling(target.getFileName() + "-work");
            // the judge stays the towers it was first trained as, without the padding objective and the colour binding
            // the shipped model's encoder has since 2026-12-03, so that its scores compare across models; its recorded
            // recipe names no UNet localization, since no UNet is trained for it
            BaseModelRecipe recipe = BaseModelRecipe.frozenText().withAttentionLocalization(0, null);
            Pretrainer trainer = new Pretrainer(recipe.withContrastive(recipe.contrastive().withSteps(clipSteps).withOwnTokenPadding(false)
                    .withColourBindingWeight(0)), work, progress);
            Pretrainer.Result r = trainer.runContrastiveStage();
            if (!r.finished()) throw new IllegalStateException("the world's CLIP did not finish training: " + r);
            trainer.exportTowers(target);
            WorldClip.Agreement a = WorldClip.load(target).agreement(256, seed + 1_000_003L);
            System.out.printf(Locale.ROOT, "world CLIP on %d unseen pictures: cosine to their own caption %.3f, to another picture's caption %.3f; "
                    + "picture-to-caption top-1 %.1f%%%n", a.pictures(), a.ownCaption(), a.otherCaption(), 100 * a.topOne());
            progress.message("wrote " + target + " (its training run stays in " + work + ")");
        }
        if (only == null || only == Judge.COUNTER) {
            Path target = out != null ? out.resolve(Bundled.objectCounter().getFileName()) : Bundled.objectCounter();
            ObjectCounter.Trained t = ObjectCounter.train(counterSteps, 32, seed, progress);
            t.save(target);
            System.out.printf(Locale.ROOT, "object counter on unseen pictures: one object read as one %.1f%%, two (side by side or laid over) read as two %.1f%%, "
                    + "each held-out concept twice read as two %.1f%%%n", 100 * t.accuracy().singles(), 100 * t.accuracy().pairs(),
                    100 * t.accuracy().heldOutTwice());
            progress.message("wrote " + target);
        }
        progress.message(String.format(Locale.ROOT, "done in %s", TerminalProgress.formatSeconds((System.nanoTime() - started) / 1e9)));
        return 0;
    }
}
