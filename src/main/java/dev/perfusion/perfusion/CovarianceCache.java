package dev.perfusion.perfusion;

import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.tensor.Scope;
import dev.perfusion.util.Progress;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The inverse input covariance C^-1 of a text encoder, computed once from the caption corpus and cached under
 * the encoder's weight hash, so every concept of that encoder shares it.
 */
public final class CovarianceCache {
    public static final int DEFAULT_CAPTIONS = 4000;
    /** Part of the cache file's name: a new value invalidates files computed by an older rule (v2: the ridge below a 1e-6 condition). */
    private static final String FORMAT = "v2";

    private CovarianceCache() {}

    /** The {@code perfusion.cache} system property, else {@code $PERFUSION_CACHE}, else ~/.cache/perfusion. */
    public static Path defaultDir() {
        String env = System.getProperty("perfusion.cache", System.getenv("PERFUSION_CACHE"));
        return env != null ? Path.of(env) : Path.of(System.getProperty("user.home"), ".cache", "perfusion");
    }

    public static Tensor inverseFor(StableDiffusion sd, Path cacheDir, int captions, Progress progress) throws IOException {
        String hash = sd.textEncoderHash();
        Path file = cacheDir.resolve("covariance-" + FORMAT + "-" + hash.replaceAll("[^A-Za-z0-9]", "_") + "-" + captions + ".safetensors");
        if (Files.isRegularFile(file)) return InputCovariance.load(file).cInvFor(hash);
        InputCovariance c = new InputCovariance(sd.textEncoder.config().hiddenSize());
        List<String> corpus = CaptionCorpus.captions(captions, 1234, word -> sd.tokenizer.tokensOf(word).size() == 1);
        int batch = 32;
        for (int i = 0; i < corpus.size(); i += batch) {
            try (Scope s = Scope.inference()) {
                c.accumulate(sd.encodePrompts(corpus.subList(i, Math.min(corpus.size(), i + batch)), w -> {}));
            }
            progress.update("input covariance", Math.min(corpus.size(), i + batch), corpus.size(), "");
        }
        c.save(file, hash);
        return Scope.keep(c.inverse());
    }
}
