package dev.perfusion.world;

import java.util.Arrays;
import java.util.List;
import java.util.TreeSet;
import java.util.stream.Stream;

/** Every word the caption grammar and the evaluation prompts can produce (concept phrases excluded). */
public final class Vocabulary {
    private Vocabulary() {}

    private static final List<String> BASE_WORDS = baseWords();
    private static final List<String> DETAIL_WORDS = detailOnlyWords();
    private static final List<String> WORDS = sortedWords(Stream.concat(BASE_WORDS.stream(), DETAIL_WORDS.stream()));

    /** Sorted, lower-case, no punctuation. */
    public static List<String> words() {
        return WORDS;
    }

    /**
     * The words only detailed captions use (patterns, accessories, "with"): a tokenizer for a recipe without them
     * leaves them out, as it did before there were any.
     */
    public static List<String> detailWords() {
        return DETAIL_WORDS;
    }

    public static boolean contains(String word) {
        return WORDS.contains(word);
    }

    /** Words of a caption: captions are lower-case words separated by single spaces. */
    public static List<String> split(String caption) {
        return Arrays.asList(caption.trim().split(" +"));
    }

    private static List<String> baseWords() {
        Stream<String> phrases = Stream.of(
                CaptionGrammar.PREFIXES.stream(),
                CaptionGrammar.FUNCTION_WORDS.stream(),
                Arrays.stream(Scene.values()).map(Scene::phrase),
                Arrays.stream(Placement.values()).map(Placement::phrase),
                Arrays.stream(Size.values()).flatMap(s -> s.word().stream()),
                Arrays.stream(ColorWord.values()).map(ColorWord::word),
                Arrays.stream(Category.values()).map(Category::word),
                Prompts.evaluation().stream().map(t -> t.replace(CaptionGrammar.SLOT, " ")))
                .flatMap(s -> s);
        return sortedWords(phrases);
    }

    private static List<String> detailOnlyWords() {
        return sortedWords(Stream.of(Stream.of("with"),
                Arrays.stream(Pattern.values()).flatMap(p -> p.adjective().stream()),
                Arrays.stream(Accessory.values()).flatMap(a -> a.phrase().stream())).flatMap(s -> s))
                .stream().filter(w -> !BASE_WORDS.contains(w)).toList();
    }

    private static List<String> sortedWords(Stream<String> phrases) {
        TreeSet<String> words = new TreeSet<>();
        phrases.forEach(p -> words.addAll(split(p)));
        words.remove("");
        return List.copyOf(words);
    }
}
