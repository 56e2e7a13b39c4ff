package dev.perfusion.perfusion;

import dev.perfusion.world.WorldGenerator;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.function.Predicate;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Captions to estimate the text encoder's input covariance with, built offline (no LAION here): templates over
 * a word list — /usr/share/dict/words when a Debian word list is installed, else a built-in list — mixed with
 * captions of the synthetic world. Deterministic from the seed.
 */
public final class CaptionCorpus {
    private static final String[] TEMPLATES = {
            "a photo of a %s", "a %s %s", "a %s in the %s", "a close-up photo of the %s", "an image of a %s next to a %s",
            "a painting of a %s", "the %s on a %s", "a %s with a %s in the background", "a drawing of a small %s",
            "a %s and a %s", "%s", "a photo of my %s at the %s", "a blurry photo of a %s", "a %s, high quality"};
    private static final String[] WORDS = ("dog cat teddy bear car house tree mug bird horse man woman child city "
            + "beach snow grass forest desert mountain river street room kitchen table chair window door book cup "
            + "flower garden sky night sun moon star cloud rain boat train plane bicycle ball hat shirt shoe toy "
            + "red blue green yellow orange purple pink brown white black grey big small old young happy wooden "
            + "golden shiny soft bright dark portrait landscape painting sculpture photo picture drawing sketch "
            + "astronaut castle bridge road park lake ocean island field farm barn cow sheep pig duck fish robot "
            + "computer phone lamp sofa bed pillow bottle glass plate bowl apple banana cake bread pizza coffee "
            + "tea water fire light shadow stone rock sand leaf branch fence wall roof tower church school shop "
            + "market village winter summer autumn spring morning evening sunset sunrise").split(" ");

    private CaptionCorpus() {}

    public static List<String> captions(int count, long seed) throws IOException {
        return captions(count, seed, word -> true);
    }

    /**
     * The same, keeping only captions whose every word is one the vocabulary holds whole ({@code knownWord}): a
     * model trained on a small world has never seen the rest, and their encodings would only add noise.
     */
    public static List<String> captions(int count, long seed, Predicate<String> knownWord) throws IOException {
        List<String> words = wordList();
        SplittableRandom rng = new SplittableRandom(seed);
        WorldGenerator world = new WorldGenerator();
        List<String> out = new ArrayList<>(count);
        for (int i = 0; out.size() < count; i++) {
            String caption;
            if (i % 3 == 2) {
                caption = world.sample(rng.nextLong(Long.MAX_VALUE)).caption();
            } else {
                String t = TEMPLATES[rng.nextInt(TEMPLATES.length)];
                Object[] args = new Object[2];
                for (int a = 0; a < 2; a++) args[a] = words.get(rng.nextInt(words.size()));
                caption = String.format(t, args);
            }
            // a vocabulary that knows hardly any of these words (a tiny test model) takes the corpus as it is
            boolean filtering = i < 20L * count;
            if (!filtering || Arrays.stream(caption.split("[ ,]+")).allMatch(knownWord)) out.add(caption);
        }
        return out;
    }

    private static List<String> wordList() throws IOException {
        Path dict = Path.of("/usr/share/dict/words");
        List<String> words = new ArrayList<>();
        if (Files.isReadable(dict)) {
            for (String w : Files.readAllLines(dict)) if (w.matches("[a-z]{3,12}")) words.add(w);
        }
        if (words.size() < 1000) words = new ArrayList<>(List.of(WORDS));
        return words;
    }
}
