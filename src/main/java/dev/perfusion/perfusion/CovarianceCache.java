package dev.perfusion.perfusion;

import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.tensor.Scope;
import dev.perfusion.util.Progress;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The inverse input covariance C^-1 of a text encoder, computed once from a caption corpus and cached under a
 * {@link Key} naming everything that went into it, so every concept of that encoder shares it and a file made
 * from other inputs is never taken for it.
 */
public final class CovarianceCache {
    public static final int DEFAULT_CAPTIONS = 4000;
    /** The corpus's seed: part of what the captions' hash names. */
    static final long CORPUS_SEED = 1234;
    /** Part of the file name: a new value retires files computed by an older rule of accumulation or inversion. */
    private static final String FORMAT = "v3";

    private CovarianceCache() {}

    /**
     * What C^-1 is a function of: the text encoder's weights and the layer read from it, the captions (their
     * corpus, count and hash: the tokenizer's filter and the seed are in the hash), how they are padded (the pad
     * token and the length: padding is most positions of every caption, and SD 2.x pads with "!" where SD 1.x pads
     * with its end token), and the ridge rule.
     */
    public record Key(String textEncoderHash, int clipSkip, String corpus, int captions, String captionsSha256,
                      int padId, int maxLength, double ridge, double ridgeBelowCondition) {
        static Key of(StableDiffusion sd, String corpus, List<String> captions) {
            return new Key(sd.textEncoderHash(), sd.clipSkip(), corpus, captions.size(), CaptionCorpus.sha256(captions),
                    sd.tokenizer.padId(), sd.tokenizer.maxLength(), InputCovariance.RIDGE, InputCovariance.ILL_CONDITIONED);
        }

        public String fileName() {
            return String.format(Locale.ROOT, "covariance-%s-%s-skip%d-%s-%d-%s-pad%dx%d-ridge%s-%s.safetensors", FORMAT,
                    textEncoderHash.replaceAll("[^A-Za-z0-9]", "_"), clipSkip, corpus.replaceAll("[^A-Za-z0-9-]", "_"),
                    captions, captionsSha256.substring(0, 16), padId, maxLength, ridge, ridgeBelowCondition);
        }

        /** What a concept file records of the C^-1 it was trained with. */
        public String provenance() {
            return String.format(Locale.ROOT, "corpus %s, %d captions (sha256 %s), clip skip %d, cached", corpus, captions,
                    captionsSha256.substring(0, 16), clipSkip);
        }

        /** The key as the cache file's metadata (the text encoder's hash is stored by {@link InputCovariance#save}). */
        Map<String, String> metadata() {
            Map<String, String> m = new LinkedHashMap<>();
            m.put("format", FORMAT);
            m.put("clip_skip", Integer.toString(clipSkip));
            m.put("corpus", corpus);
            m.put("corpus_captions_sha256", captionsSha256);
            m.put("pad_id", Integer.toString(padId));
            m.put("max_length", Integer.toString(maxLength));
            m.put("ridge", Double.toString(ridge));
            m.put("ridge_below_condition", Double.toString(ridgeBelowCondition));
            return m;
        }
    }

    /** The {@code perfusion.cache} system property, else {@code $PERFUSION_CACHE}, else ~/.cache/perfusion. */
    public static Path defaultDir() {
        String env = System.getProperty("perfusion.cache", System.getenv("PERFUSION_CACHE"));
        return env != null ? Path.of(env) : Path.of(System.getProperty("user.home"), ".cache", "perfusion");
    }

    /** The corpus's first {@code count} captions for this model's vocabulary. */
    public static List<String> captions(StableDiffusion sd, CaptionCorpus corpus, int count) {
        return captions(sd.tokenizer, corpus, count);
    }

    /** The same for a tokenizer alone (a text encoder without a UNet, as the contrastive stage leaves it). */
    public static List<String> captions(ClipTokenizer tokenizer, CaptionCorpus corpus, int count) {
        return corpus.captions(count, CORPUS_SEED, word -> tokenizer.tokensOf(word).size() == 1);
    }

    /** The key C^-1 of this model from {@code count} captions of {@code corpus} is cached under. */
    public static Key key(StableDiffusion sd, CaptionCorpus corpus, int count) {
        return Key.of(sd, corpus.name(), captions(sd, corpus, count));
    }

    public static Tensor inverseFor(StableDiffusion sd, CaptionCorpus corpus, Path cacheDir, int count, Progress progress)
            throws IOException {
        return inverseWithProvenance(sd, corpus, cacheDir, count, progress).cInv();
    }

    /** C^-1 as {@link #inverseFor} gives it, with what it was computed from, as a concept file records it. */
    public static CovarianceFile.Loaded inverseWithProvenance(StableDiffusion sd, CaptionCorpus corpus, Path cacheDir, int count,
                                                              Progress progress) throws IOException {
        List<String> captions = captions(sd, corpus, count);
        Key key = Key.of(sd, corpus.name(), captions);
        Path file = cacheDir.resolve(key.fileName());
        if (Files.isRegularFile(file)) {
            try {
                return new CovarianceFile.Loaded(InputCovariance.load(file).cInvFor(key.textEncoderHash()), key.provenance());
            } catch (IOException | RuntimeException e) {
                // a cache is never the only copy: what cannot be read is computed again and replaced
                progress.message("the cached C^-1 " + file + " cannot be read (" + e.getMessage() + "): computing it again");
            }
        }
        InputCovariance c = accumulate(sd, captions, progress);
        try {
            c.save(file, key.textEncoderHash(), key.metadata());
        } catch (IOException | RuntimeException e) {
            // a read-only or full cache folder costs the next run the computation, not this run its work
            progress.message("C^-1 is not cached (" + e.getMessage() + "): it is computed again by every run;"
                    + " PERFUSION_CACHE names a folder to cache it in");
        }
        return new CovarianceFile.Loaded(Scope.keep(c.inverse()), key.provenance());
    }

    /** The input covariance of {@code sd}'s text encoder over {@code captions} (in batches of 32, at its clip skip). */
    public static InputCovariance accumulate(StableDiffusion sd, List<String> captions, Progress progress) {
        java.util.concurrent.atomic.AtomicInteger cut = new java.util.concurrent.atomic.AtomicInteger();
        InputCovariance c = InputCovariance.of(sd.textEncoder.config().hiddenSize(), batch -> sd.encodePrompts(batch, w -> cut.incrementAndGet()),
                captions, progress);
        // C is of the encodings the text encoder makes, so a long caption counts as far as it reads; said, not hidden
        if (cut.get() > 0) {
            progress.message(String.format(java.util.Locale.ROOT, "note: %,d of the %,d captions are longer than the text encoder reads and "
                    + "count up to its limit", cut.get(), captions.size()));
        }
        return c;
    }
}
