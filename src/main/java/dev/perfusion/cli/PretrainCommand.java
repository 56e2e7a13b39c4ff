package dev.perfusion.cli;

import dev.perfusion.pretrain.BaseModelRecipe;
import dev.perfusion.pretrain.Pretrainer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "pretrain", mixinStandardHelpOptions = true,
        description = {"Train the bundled base model from scratch.",
                "On the synthetic world: the VAE, then the text encoder and UNet; about two hours on 2 CPU cores; checkpoints often, and a rerun with "
                        + "the same --work resumes."})
final class PretrainCommand implements Callable<Integer> {
    @Option(names = "--work", defaultValue = "pretrain-work", paramLabel = "DIR",
            description = "Work folder: checkpoint, losses.csv, samples/, and the finished model/ (default: ${DEFAULT-VALUE}).") Path work;
    @Option(names = "--max-minutes", defaultValue = "0", description = "Checkpoint and stop after this many minutes (0: run to the end); run again to resume.") double maxMinutes;
    @Option(names = "--vae-steps", description = "Override the recipe's VAE steps.") Integer vaeSteps;
    @Option(names = "--train-steps", description = "Override the recipe's training steps of the text encoder and UNet.") Integer trainSteps;
    @Option(names = "--decoder-steps", description = "Override the recipe's decoder fine-tuning steps.") Integer decoderSteps;
    @Option(names = "--decoder-only", description = "Run only the decoder fine-tuning stage (it needs only the VAE stage, so it may run beside the diffusion stage in a second process).") boolean decoderOnly;
    @Option(names = "--continue-from", paramLabel = "MODEL", description = "Train the text encoder and UNet further from this exported model (its tokenizer and VAE are kept) for --train-steps more steps.") Path continueFrom;
    @Option(names = "--checkpoint-every", defaultValue = "250", description = "Steps between checkpoints in --work, which a rerun resumes from (default: ${DEFAULT-VALUE}).") int checkpointEvery;
    @Option(names = "--sample-every", defaultValue = "1000", description = "Write a sample grid every this many steps (default: ${DEFAULT-VALUE}).") int sampleEvery;

    @Override
    public Integer call() throws Exception {
        BaseModelRecipe recipe = BaseModelRecipe.standard();
        if (vaeSteps != null || trainSteps != null || decoderSteps != null) {
            recipe = recipe.withSteps(vaeSteps != null ? vaeSteps : recipe.vaeSteps(), trainSteps != null ? trainSteps : recipe.diffusionSteps(),
                    decoderSteps != null ? decoderSteps : recipe.decoderSteps());
        }
        TerminalProgress progress = new TerminalProgress(System.out);
        Pretrainer trainer = new Pretrainer(recipe, work, progress).schedule(checkpointEvery, sampleEvery);
        if (maxMinutes > 0) trainer.timeLimit(maxMinutes * 60);
        if (continueFrom != null) trainer.continueFrom(continueFrom);
        Pretrainer.Result r = decoderOnly ? trainer.runDecoderStage() : trainer.run();
        progress.message(r.finished()
                ? String.format(Locale.ROOT, "finished in %s (loss %.4f): the model is in %s", TerminalProgress.formatSeconds(r.seconds()), r.loss(), r.model())
                : String.format(Locale.ROOT, "stopped at the time limit, %s step %d (loss %.4f); run the same command to resume", r.stage(), r.step(), r.loss()));
        return 0;
    }
}
