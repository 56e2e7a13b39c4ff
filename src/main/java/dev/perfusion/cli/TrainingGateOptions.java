package dev.perfusion.cli;

import dev.perfusion.perfusion.Concept;
import dev.perfusion.training.TrainingSettings;
import picocli.CommandLine.Option;

/**
 * The sigmoid gate a concept is trained through (a mixin of {@code train} and {@code eval}): the paper's (0.75, 0.1)
 * unless moved. Generation's gate is set apart ({@code generate --beta}). On the bundled model neither 0.65 nor 0.85
 * beat the paper's (README, "The paper's claims, judged on the shipped L10").
 */
final class TrainingGateOptions {
    @Option(names = "--train-beta", paramLabel = "BETA", defaultValue = "" + TrainingSettings.TRAIN_BETA,
            description = "The gate threshold while training (default: ${DEFAULT-VALUE}, the paper's); generation's is --beta.")
    double beta;

    @Option(names = "--train-tau", paramLabel = "TAU", defaultValue = "" + TrainingSettings.TRAIN_TAU,
            description = "The gate temperature while training (default: ${DEFAULT-VALUE}, the paper's); generation's is --tau.")
    double tau;

    /** Fails, naming the option, before any model is loaded. */
    TrainingGateOptions check() {
        Flags.named("--train-beta", () -> Concept.checkBeta(beta));
        Flags.named("--train-tau", () -> Concept.checkTau(tau));
        return this;
    }
}
