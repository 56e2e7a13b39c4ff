package dev.perfusion.cli;

import dev.perfusion.perfusion.CovarianceFile;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.util.Progress;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Where the text encoder's input covariance comes from: a file computed elsewhere, or the built-in corpus (a mixin). */
final class CovarianceOptions {
    @Option(names = "--covariance", paramLabel = "FILE",
            description = "The text encoder's input covariance computed elsewhere (.npy or .safetensors; tensors named covariance or"
                    + " covariance_inverse say which they are, as 'covariance' writes them), instead of the built-in caption corpus's.")
    Path file;

    @Option(names = "--covariance-inverse",
            description = "The --covariance file (a .npy, or a .safetensors file of one tensor named otherwise) holds C^-1, not C.")
    boolean inverse;

    /** Fails before any model is loaded when the options cannot work. */
    void check() throws IOException {
        if (inverse && file == null) throw new IllegalArgumentException("--covariance-inverse says what a --covariance file holds; give --covariance FILE");
        if (file != null && !Files.isRegularFile(file)) throw new IOException("--covariance " + file + ": no such file");
    }

    /** C^-1 for the loaded model and its provenance: from the file, else from the cache of the built-in corpus. */
    CovarianceFile.Loaded cInv(ModelOptions model, StableDiffusion sd, int captions, Progress progress) throws IOException {
        if (file == null) return model.covariance(sd, captions, progress);
        CovarianceFile.Holds holds = inverse ? CovarianceFile.Holds.INVERSE : CovarianceFile.Holds.COVARIANCE;
        try {
            return CovarianceFile.read(file, holds, sd.textEncoder.config().hiddenSize(), sd.textEncoderHash(), sd.clipSkip());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--covariance: " + e.getMessage(), e);
        }
    }
}
