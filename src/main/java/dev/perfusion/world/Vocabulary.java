package dev.perfusion.world;

import java.util.Arrays;
import java.util.List;
import java.util.TreeSet;
import java.util.stream.Stream;

/** Every word the caption grammar and the evaluation prompts can produce (concept phrases excluded). */
public final class Vocabulary {
    private Vocabulary() {}

    private static final List<String> WORDS = build();

    /** Sorted, lower-case, no punctuation. */
    public static List<String> words() {
        return WORDS;
    }

    public static boolean contains(String word) {
        return WORDS.contains(word);
    }

    /** Words of a caption: captions are lower-case words separated by single spaces. */
    public static List<String> split(String caption) {
        return Arrays.asList(caption.trim().split(" +"));
    }

    private static List<String> build() {
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
        TreeSet<String> words = new TreeSet<>();
        phrases.forEach(p -> words.addAll(split(p)));
        words.remove("");
        return List.copyOf(words);
    }
}
