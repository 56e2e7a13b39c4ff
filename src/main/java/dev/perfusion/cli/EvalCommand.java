package dev.perfusion.cli;

import dev.perfusion.eval.MethodEvaluation;
import dev.perfusion.eval.WorldJudges;
import dev.perfusion.perfusion.CovarianceCache;
import dev.perfusion.training.ConceptMethod;
import dev.perfusion.training.TrainingSettings;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.world.Bundled;
import dev.perfusion.world.HeldOut;
import dev.perfusion.world.Prompts;
import org.bytedeco.pytorch.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "eval", mixinStandardHelpOptions = true,
        description = {"Score Perfusion and its baselines on held-out instances.",
                "Held-out instances of the bundled world: concept fidelity, text alignment, leakage, identification (the trained instance picked out of the held-out ones) and details (picked out of its look-alikes without its accessory or pattern) per method (and per beta), "
                        + "file sizes and training times, and two concepts combined. Writes scores.csv, report.md and tradeoff.png."})
final class EvalCommand implements Callable<Integer> {
    @Mixin ModelOptions model;
    @Option(names = "--out", defaultValue = "eval", paramLabel = "DIR",
            description = "Report folder: scores.csv, report.md, tradeoff.png, and the trained concepts in work/ (default: ${DEFAULT-VALUE}).") Path out;
    @Mixin ConceptStartOption conceptStart;
    @Mixin SideSteeringOption sideSteering;
    @Option(names = "--quick", description = "The CI-sized protocol: one instance, three prompts, a few steps.") boolean quick;
    @Option(names = "--instances", description = "Held-out instances (default: 6; quick 1).") Integer instances;
    @Option(names = "--prompts", description = "Evaluation prompts (default: 16; quick 3).") Integer prompts;
    @Option(names = "--seeds", description = "Seeds per prompt (default: 2; quick 1).") Integer seeds;
    @Option(names = "--train-steps", description = "Training steps of every method (default: 400; quick 3).") Integer trainSteps;
    @Option(names = "--beta", split = ",", description = "Perfusion's beta values, comma-separated or repeated (default: 0.5,0.6,0.7,0.8,0.9).") List<Double> betas;
    @Option(names = "--mask", defaultValue = TrainingSettings.DEFAULT_MASK, converter = Choices.EvaluationMask.class, completionCandidates = Choices.EvaluationMask.class,
            description = "Loss mask of every training: ${COMPLETION-CANDIDATES} (attention: zero-shot, from the model's cross-attention; truth: the renderer's masks) (default: ${DEFAULT-VALUE}).")
    MethodEvaluation.Mask mask;
    @Option(names = "--method", split = ",", converter = Choices.Method.class, completionCandidates = Choices.Method.class,
            description = "The methods to measure, comma-separated or repeated, of ${COMPLETION-CANDIDATES} (default: all).") List<ConceptMethod> methods;

    @Option(names = "--embedding-lr", paramLabel = "LR", defaultValue = "" + TrainingSettings.EMBEDDING_LR,
            description = "Learning rate of every method's word embedding; 0 keeps the supercategory's (not with textual-inversion) (default: ${DEFAULT-VALUE}, the paper's).")
    double embeddingLr;

    @Option(names = "--i-star-after-objects", description = "Train every method's concepts with i* tracked also after other objects' words (train's option).")
    boolean iStarAfterObjects;

    @Mixin TrainingGateOptions gate;

    @Option(names = "--reuse-concepts", description = "Use again each concept an earlier run with the same --out left in its "
            + "work/concepts, where it was trained the same way for the same model (training times then count only the concepts trained now).")
    boolean reuseConcepts;

    @Option(names = "--merge", split = ",", paramLabel = "DIR",
            description = "Train nothing: merge the scores of earlier runs' --out folders (comma-separated) into one report and trade-off plot in --out.")
    List<Path> merge;

    @Spec CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        if (merge != null) return merge();
        model.checkPrecision();
        int evaluationPrompts = Prompts.evaluationPrompts().size();
        if (prompts != null && (prompts < 1 || prompts > evaluationPrompts)) {
            throw new IllegalArgumentException("--prompts must be in 1.." + evaluationPrompts + " (the evaluation prompts), got " + prompts);
        }
        if (seeds != null && seeds < 1) throw new IllegalArgumentException("--seeds must be at least 1, got " + seeds);
        if (trainSteps != null && trainSteps < 1) throw new IllegalArgumentException("--train-steps must be at least 1, got " + trainSteps);
        MethodEvaluation.Protocol p = quick ? MethodEvaluation.Protocol.quick() : MethodEvaluation.Protocol.full();
        p = new MethodEvaluation.Protocol(instances != null ? instances : p.instances(), prompts != null ? prompts : p.prompts(),
                seeds != null ? seeds : p.seeds(), trainSteps != null ? trainSteps : p.trainingSteps(), betas != null ? betas : p.betas(),
                p.samplingSteps(), p.guidance(), conceptStart.check(), sideSteering.check(),
                methods != null ? methods : p.methods(), p.multiConcept(), mask,
                new MethodEvaluation.Training(embeddingLr, iStarAfterObjects, gate.check().beta, gate.tau));
        if (p.instances() < 1 || p.instances() > HeldOut.instances().size()) {
            throw new IllegalArgumentException("--instances must be in 1.." + HeldOut.instances().size());
        }
        FileChecks.writableFolder(out);
        WorldJudges judges = WorldJudges.bundled();
        TerminalProgress progress = new TerminalProgress(System.out);
        long started = System.nanoTime();
        StableDiffusion sd = model.load(progress);
        Tensor cInv = model.covarianceInverse(sd, CovarianceCache.DEFAULT_CAPTIONS, progress);
        MethodEvaluation evaluation = new MethodEvaluation(sd, cInv, judges, p, out.resolve("work"), progress);
        if (reuseConcepts) evaluation.reusingConcepts();
        MethodEvaluation.Report r = evaluation.run(HeldOut.instances());
        MethodEvaluation.write(r, p, out, sd.name);
        System.out.print(MethodEvaluation.markdown(r, p, sd.name));
        progress.message(String.format(Locale.ROOT, "wrote %s (scores.csv, report.md, tradeoff.png) in %s", out,
                TerminalProgress.formatSeconds((System.nanoTime() - started) / 1e9)));
        return 0;
    }

    private int merge() throws IOException {
        // Asked of the parse, not of the fields: a given option equal to its default (--mask none) is refused too.
        List<String> given = spec.commandLine().getParseResult().matchedOptions().stream().map(OptionSpec::longestName)
                .filter(name -> !List.of("--merge", "--out", "--threads").contains(name)).distinct().toList();
        if (!given.isEmpty()) {
            throw new IllegalArgumentException("--merge trains nothing: give it only the runs' folders and --out (not "
                    + String.join(", ", given) + ")");
        }
        List<List<MethodEvaluation.Score>> runs = new ArrayList<>();
        for (Path dir : merge) {
            if (dir.toAbsolutePath().normalize().equals(out.toAbsolutePath().normalize())) {
                throw new IllegalArgumentException("--out " + out + " is one of the merged runs: its own report would be replaced; give another folder");
            }
            Path scores = dir.resolve("scores.csv");
            if (!Files.isRegularFile(scores)) throw new IllegalArgumentException(dir + ": no scores.csv (give the --out folder of an earlier eval)");
            runs.add(MethodEvaluation.readScores(scores));
        }
        for (String other : MethodEvaluation.otherProtocols(merge)) System.err.println("warning: " + other + "; the merged report says so");
        FileChecks.writableFolder(out);
        System.out.print(MethodEvaluation.writeMerged(MethodEvaluation.merge(runs), merge, out));
        System.out.println("wrote " + out + " (scores.csv, report.md, tradeoff.png)");
        return 0;
    }
}
