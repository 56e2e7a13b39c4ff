package dev.perfusion.perfusion;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.function.LongFunction;
import java.util.function.Predicate;

/**
 * Captions to estimate the text encoder's input covariance with. There is no LAION here, so the corpus is one
 * the project defines: templates over a fixed word list, both below, nothing read from the machine. A model
 * family may mix in captions of its own ({@link #mixedWith}: the synthetic world's base model takes the world's),
 * so C^-1 is a function of the text encoder, the corpus and the seed alone.
 */
public final class CaptionCorpus {
    private static final String[] TEMPLATES = {
            "a photo of a %s", "a %s %s", "a %s in the %s", "a close-up photo of the %s", "an image of a %s next to a %s",
            "a painting of a %s", "the %s on a %s", "a %s with a %s in the background", "a drawing of a small %s",
            "a %s and a %s", "%s", "a photo of my %s at the %s", "a blurry photo of a %s", "a %s, high quality"};
    private static final List<String> WORDS = List.of(("dog cat teddy bear car house tree mug bird horse man woman child city "
            + "beach snow grass forest desert mountain river street room kitchen table chair window door book cup "
            + "flower garden sky night sun moon star cloud rain boat train plane bicycle ball hat shirt shoe toy "
            + "red blue green yellow orange purple pink brown white black grey big small old young happy wooden "
            + "golden shiny soft bright dark portrait landscape painting sculpture photo picture drawing sketch "
            + "astronaut castle bridge road park lake ocean island field farm barn cow sheep pig duck fish robot "
            + "computer phone lamp sofa bed pillow bottle glass plate bowl apple banana cake bread pizza coffee "
            + "tea water fire light shadow stone rock sand leaf branch fence wall roof tower church school shop "
            + "market village winter summer autumn spring morning evening sunset sunrise").split(" "));
    /** Every {@value}rd caption of a mixed corpus is the mixed-in source's. */
    private static final int MIX_EVERY = 3;

    private final String name;
    private final LongFunction<String> mixedIn;

    private CaptionCorpus(String name, LongFunction<String> mixedIn) {
        this.name = name;
        this.mixedIn = mixedIn;
    }

    /** Templates over the word list: the corpus of any model with no captions of its own. */
    public static CaptionCorpus generic() {
        return new CaptionCorpus("generic", null);
    }

    /**
     * This corpus with every third caption taken from {@code captionOfSeed} (given a seed drawn from the corpus's
     * generator), named {@code source} in the corpus's name.
     */
    public CaptionCorpus mixedWith(String source, LongFunction<String> captionOfSeed) {
        if (mixedIn != null) throw new IllegalStateException("corpus '" + name + "' already mixes in a source");
        if (!source.matches("[a-z0-9-]+")) throw new IllegalArgumentException("a source name is lower-case letters, digits and '-', got '" + source + "'");
        return new CaptionCorpus(name + "+" + source, captionOfSeed);
    }

    /** "generic", or "generic+world" for a corpus mixed with the world's captions. */
    public String name() { return name; }

    /**
     * {@code count} captions drawn from {@code seed}, keeping only those whose every word is one the vocabulary
     * holds whole ({@code knownWord}): a model trained on a small world has never seen the rest, and their
     * encodings would only add noise.
     */
    public List<String> captions(int count, long seed, Predicate<String> knownWord) {
        if (count < 1) throw new IllegalArgumentException("the corpus needs at least one caption, got " + count);
        SplittableRandom rng = new SplittableRandom(seed);
        List<String> out = new ArrayList<>(count);
        for (int i = 0; out.size() < count; i++) {
            String caption;
            if (mixedIn != null && i % MIX_EVERY == MIX_EVERY - 1) {
                caption = mixedIn.apply(rng.nextLong(Long.MAX_VALUE));
            } else {
                String t = TEMPLATES[rng.nextInt(TEMPLATES.length)];
                Object[] args = new Object[2];
                for (int a = 0; a < 2; a++) args[a] = WORDS.get(rng.nextInt(WORDS.size()));
                caption = String.format(Locale.ROOT, t, args);
            }
            // a vocabulary that knows hardly any of these words (a tiny test model) takes the corpus as it is
            boolean filtering = i < 20L * count;
            if (!filtering || Arrays.stream(caption.split("[ ,]+")).allMatch(knownWord)) out.add(caption);
        }
        return out;
    }

    /** The captions of a user's file: UTF-8, one caption a line, blank lines skipped, each trimmed. */
    public static List<String> fromFile(java.nio.file.Path file) throws java.io.IOException {
        List<String> lines;
        try {
            lines = java.nio.file.Files.readAllLines(file);
        } catch (java.nio.charset.MalformedInputException e) {
            throw new java.io.IOException(file + ": not UTF-8 text (a caption file holds one caption a line)");
        } catch (java.nio.file.NoSuchFileException e) {
            throw new java.io.IOException(file + ": no such file");
        }
        List<String> out = new ArrayList<>();
        for (String line : lines) {
            String c = line.strip();
            if (!c.isEmpty()) out.add(c);
        }
        if (out.isEmpty()) throw new java.io.IOException(file + ": no captions (one a line)");
        return out;
    }

    /** SHA-256 of the captions, each in UTF-8 followed by a newline: what the covariance cache names them by. */
    public static String sha256(List<String> captions) {
        try {
            MessageDigest digest = MessageDigest.getInstance("SHA-256");
            for (String c : captions) {
                if (c.indexOf('\n') >= 0) throw new IllegalArgumentException("a caption spans lines: '" + c + "'");
                digest.update((c + "\n").getBytes(StandardCharsets.UTF_8));
            }
            return HexFormat.of().formatHex(digest.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JVM has no SHA-256", e);
        }
    }
}
