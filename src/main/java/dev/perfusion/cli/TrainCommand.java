package dev.perfusion.cli;

import dev.perfusion.io.layout.ResolvedModel;
import dev.perfusion.perfusion.AppliedConcepts;
import dev.perfusion.perfusion.CovarianceCache;
import dev.perfusion.perfusion.CovarianceFile;
import dev.perfusion.perfusion.GateCheck;
import dev.perfusion.training.ConceptMethod;
import dev.perfusion.training.ConceptTrainer;
import dev.perfusion.training.TrainingImages;
import dev.perfusion.training.TrainingSettings;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.util.ProcessMemory;
import picocli.CommandLine.Command;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "train", mixinStandardHelpOptions = true,
        description = {"Learn a concept from a few photos (a ~100 KB file).",
                "The concept is a new word, a kind of an existing one-token word (its supercategory)."})
final class TrainCommand implements Callable<Integer> {
    @Mixin ModelOptions model;

    @Option(names = "--images", required = true, paramLabel = "DIR", description = "Folder of photos of the concept (typically 4-8).") Path images;
    @Option(names = "--word", required = true, description = "The new word, such as my-teddy (must not already be a token).") String word;
    @Option(names = "--supercategory", required = true, description = "What it is a kind of, one token of the vocabulary, such as teddy.") String supercategory;
    @Option(names = "--out", required = true, paramLabel = "FILE", description = "The concept file to write (.safetensors).") Path out;
    @Option(names = "--mask", defaultValue = TrainingSettings.DEFAULT_MASK, paramLabel = "none|attention|DIR", converter = LossMask.Converter.class,
            description = "Weight the loss by a mask of the concept: a folder of masks (the photos' file names; white = concept), or attention, "
                    + "a zero-shot mask: where the model's cross-attention to the supercategory word falls on each photo (no extra model) "
                    + "(default: ${DEFAULT-VALUE}).") LossMask mask;
    @Option(names = "--train-steps", defaultValue = "400", description = "Training (optimizer) steps (default: ${DEFAULT-VALUE}).") int trainSteps;
    @Option(names = "--batch", defaultValue = "4", description = "Images per micro-batch (default: ${DEFAULT-VALUE}).") int batch;
    @Option(names = "--accumulate", defaultValue = "4", description = "Micro-batches per optimizer step; effective batch = batch x accumulate (default: ${DEFAULT-VALUE}).") int accumulate;
    @Option(names = "--seed", defaultValue = "1", description = "Seed for augmentation, prompts, timesteps and noise (default: ${DEFAULT-VALUE}).") long seed;
    @Option(names = "--fit", defaultValue = "crop", converter = Choices.Fit.class, completionCandidates = Choices.Fit.class,
            description = "Non-square photos: ${COMPLETION-CANDIDATES} (crop keeps the centre, pad fills the sides) (default: ${DEFAULT-VALUE}).")
    TrainingImages.Fit fit;
    @Option(names = "--views", defaultValue = "8", description = "Augmented views (random crops, flips) per image (default: ${DEFAULT-VALUE}).") int views;
    @Option(names = "--resolution", defaultValue = "0", description = "Training resolution in pixels (default: the model's native size).") int resolution;
    @Option(names = "--resume", description = "Continue from the checkpoint written beside --out during an earlier run.") boolean resume;
    @Option(names = "--samples", paramLabel = "DIR", description = "Write a sample image here every --sample-every steps.") Path samples;
    @Option(names = "--sample-every", defaultValue = "100", description = "Steps between sample images in --samples; 0: none (default: ${DEFAULT-VALUE}).") int sampleEvery;
    @Option(names = "--checkpoint-every", defaultValue = "50", description = "Steps between checkpoints beside --out, which --resume continues from; 0: none (default: ${DEFAULT-VALUE}).") int checkpointEvery;
    @Option(names = "--method", defaultValue = "perfusion", converter = Choices.Method.class, completionCandidates = Choices.Method.class,
            description = "What to train: ${COMPLETION-CANDIDATES}; all but perfusion are baselines (textual-inversion learns the embedding only, kv-finetune whole K/V matrices) (default: ${DEFAULT-VALUE}).")
    ConceptMethod method;
    @Option(names = "--embedding-lr", paramLabel = "LR", defaultValue = "" + TrainingSettings.EMBEDDING_LR,
            description = "Learning rate of the new word's embedding; 0 keeps the supercategory's (default: ${DEFAULT-VALUE}, the paper's).")
    double embeddingLr;
    @Option(names = "--edit-lr", paramLabel = "LR", defaultValue = "" + TrainingSettings.EDIT_LR,
            description = "Learning rate of the method's own tensors, such as the values o*_V (default: ${DEFAULT-VALUE}, the paper's).")
    double editLr;
    @Mixin TrainingGateOptions gate;
    @Option(names = "--i-star-after-objects", description = "Track i* also in prompts that name another object before the word "
            + "(\"a dog on the left and a WORD on the right\"), not only in the training prompts (the paper's i*): a causal text "
            + "encoder's encoding of the word changes with the words before it. Measured on the bundled model, it lifts s there "
            + "but not how often a concept of a pair is drawn (README, \"Which concept fails\").") boolean iStarAfterObjects;
    @Option(names = "--covariance-captions", defaultValue = "" + CovarianceCache.DEFAULT_CAPTIONS,
            description = "Captions of the built-in corpus for the text encoder's input covariance, computed once per encoder and cached (default: ${DEFAULT-VALUE}).") int captions;
    @Mixin CovarianceOptions covariance;

    @Override
    public Integer call() throws Exception {
        model.checkPrecision();
        // Everything that can be checked without the model's weights is checked before loading them (which takes a while).
        atLeast("--train-steps", trainSteps, 1);
        atLeast("--batch", batch, 1);
        atLeast("--accumulate", accumulate, 1);
        atLeast("--views", views, 1);
        atLeast("--covariance-captions", captions, 1);
        atLeast("--resolution", resolution, 0);
        covariance.check();
        gate.check();
        atLeast("--sample-every", sampleEvery, 0);
        atLeast("--checkpoint-every", checkpointEvery, 0);
        if (Files.isDirectory(out)) throw new IllegalArgumentException("--out " + out + " is a folder; give a file name");
        FileChecks.writableFolder(out.toAbsolutePath().getParent());
        if (samples != null) FileChecks.writableFolder(samples.toAbsolutePath());
        ResolvedModel resolved = model.resolve();
        ClipTokenizer tokenizer = ModelOptions.tokenizer(resolved);
        AppliedConcepts.singleToken(tokenizer, supercategory);
        tokenizer.withAddedTokens(List.of(word)); // the new word must not be a token already
        int size = trainingSize(resolved);
        TerminalProgress progress = new TerminalProgress(System.out);
        TrainingImages.check(images, mask.folder(), size, fit, progress::message);

        TrainingSettings settings = TrainingSettings.defaults().toBuilder().steps(trainSteps).batch(batch, accumulate)
                .seed(seed).learningRates(embeddingLr, editLr).trainingGate(gate.beta, gate.tau).images(fit, views, size).schedule(checkpointEvery, sampleEvery).method(method).attentionMasks(mask.attention())
                .iStarAfterObjects(iStarAfterObjects).build();

        StableDiffusion sd = model.load(progress);
        CovarianceFile.Loaded cInv = covariance.cInv(model, sd, captions, progress);
        ConceptTrainer.Result r = StopNotice.around(() -> stoppedMessage(out), () -> new ConceptTrainer(sd, cInv.cInv(), cInv.provenance(),
                word, supercategory, settings).train(images, mask.folder(), out, resume, samples, progress));
        progress.message(String.format(Locale.ROOT, "wrote %s (%,d bytes) in %s; loss on fixed batches %.4f -> %.4f; peak memory %.2f GiB",
                out, Files.size(out), TerminalProgress.formatSeconds(r.seconds()), r.probeBefore(), r.probeAfter(), ProcessMemory.peakResidentGiB()));
        GateCheck.of(sd, cInv.cInv(), r.concept()).ifPresent(check -> progress.message(check.summary()));
        return 0;
    }

    /** What a training stopped from outside leaves: the last checkpoint, which --resume goes on from, or nothing. */
    static String stoppedMessage(Path out) {
        Path checkpoint = out.resolveSibling(out.getFileName() + ".ckpt");
        try {
            String step = Files.isRegularFile(checkpoint) ? dev.perfusion.io.Safetensors.open(checkpoint).metadata().get("step") : null;
            if (step != null) {
                return "no concept was written; " + checkpoint + " holds step " + step + ", and the same command with --resume goes on from it";
            }
        } catch (java.io.IOException | RuntimeException e) {
            // an unreadable checkpoint is no place to resume from
        }
        return "no concept was written, and no checkpoint yet (--checkpoint-every steps apart)";
    }

    /** What weights the loss: nothing, the zero-shot attention mask, or the mask files in a folder. */
    record LossMask(Path folder, boolean attention) {
        static final class Converter implements ITypeConverter<LossMask> {
            @Override
            public LossMask convert(String text) {
                if (text.equalsIgnoreCase("none")) return new LossMask(null, false);
                if (text.equalsIgnoreCase("attention")) return new LossMask(null, true);
                return new LossMask(Path.of(text), false);
            }
        }
    }

    /** --resolution, else the model's native size, read from its configs; a whole number of latent pixels. */
    private int trainingSize(ResolvedModel resolved) {
        int factor = resolved.vaeConfig().downsamplingFactor();
        if (resolution == 0) return resolved.unetConfig().sampleSize() * factor;
        if (resolution % factor != 0) {
            throw new IllegalArgumentException("--resolution must be a multiple of " + factor + " (the VAE's factor), got " + resolution);
        }
        return resolution;
    }

    private static void atLeast(String option, int value, int minimum) {
        if (value < minimum) throw new IllegalArgumentException(option + " must be at least " + minimum + ", got " + value);
    }
}
