package dev.perfusion.perfusion;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/** The covariance corpus is the project's own: the same captions on every machine, and its hash names them. */
class CaptionCorpusTest {
    /**
     * The generic corpus as the cache has named it since it stopped reading the machine's word list: a change of
     * templates, words or drawing order changes every model's C^-1, and must be a deliberate one (update this).
     */
    private static final String GENERIC_4000 = "4a854693c47977cb3ab81d8ba5855d5aea4dbf72cc50406995869a53f9de5117";

    @Test
    void twoBuildsGiveTheSameCaptions() {
        List<String> a = CaptionCorpus.generic().captions(500, 1234, w -> true);
        List<String> b = CaptionCorpus.generic().captions(500, 1234, w -> true);
        assertEquals(a, b);
        assertNotEquals(a, CaptionCorpus.generic().captions(500, 1235, w -> true), "another seed, other captions");
        assertEquals(GENERIC_4000, CaptionCorpus.sha256(CaptionCorpus.generic().captions(4000, 1234, w -> true)));
    }

    @Test
    void aShorterCorpusIsAPrefixOfALongerOne() {
        List<String> longer = CaptionCorpus.generic().captions(300, 7, w -> true);
        assertEquals(longer.subList(0, 100), CaptionCorpus.generic().captions(100, 7, w -> true));
    }

    @Test
    void genericCaptionsUseOnlyTheTemplatesAndTheWordList() {
        Set<String> words = new java.util.HashSet<>();
        for (String c : CaptionCorpus.generic().captions(2000, 1, w -> true)) words.addAll(List.of(c.split("[ ,]+")));
        // template words plus list words; nothing a host dictionary would add
        assertTrue(words.size() < 200, words.size() + " distinct words");
        assertTrue(words.containsAll(List.of("photo", "dog", "sunrise", "quality")), words.toString());
    }

    @Test
    void aMixedInSourceGivesEveryThirdCaption() {
        List<Long> seeds = new ArrayList<>();
        CaptionCorpus mixed = CaptionCorpus.generic().mixedWith("test-source", seed -> {
            seeds.add(seed);
            return "source caption";
        });
        assertEquals("generic+test-source", mixed.name());
        List<String> captions = mixed.captions(30, 1234, w -> true);
        assertEquals(30, captions.size());
        for (int i = 0; i < captions.size(); i++) {
            assertEquals(i % 3 == 2, captions.get(i).equals("source caption"), i + ": " + captions.get(i));
        }
        assertEquals(10, seeds.size());
        assertTrue(seeds.stream().allMatch(s -> s >= 0), "seeds from the non-negative range: " + seeds);
        assertThrows(IllegalStateException.class, () -> mixed.mixedWith("again", s -> ""));
        assertThrows(IllegalArgumentException.class, () -> CaptionCorpus.generic().mixedWith("Has Spaces", s -> ""));
    }

    @Test
    void captionsWithUnknownWordsAreLeftOutUnlessTheVocabularyKnowsAlmostNothing() {
        List<String> filtered = CaptionCorpus.generic().captions(200, 3, w -> !w.startsWith("s"));
        assertEquals(200, filtered.size());
        for (String c : filtered) assertTrue(List.of(c.split("[ ,]+")).stream().noneMatch(w -> w.startsWith("s")), c);
        // a vocabulary that knows no word at all still gets a corpus (the filter gives up after 20 x count draws)
        List<String> unfiltered = CaptionCorpus.generic().captions(5, 3, w -> false);
        assertEquals(5, unfiltered.size());
    }

    @Test
    void theHashNamesTheCaptionsAndTheirOrder() {
        String h = CaptionCorpus.sha256(List.of("a dog", "a cat"));
        assertEquals(64, h.length());
        assertEquals(h, CaptionCorpus.sha256(List.of("a dog", "a cat")));
        assertNotEquals(h, CaptionCorpus.sha256(List.of("a cat", "a dog")));
        assertNotEquals(h, CaptionCorpus.sha256(List.of("a dog", "a cat", "a cat")));
        // the separator cannot be forged by a caption
        assertNotEquals(CaptionCorpus.sha256(List.of("a", "b")), CaptionCorpus.sha256(List.of("a b")));
        assertThrows(IllegalArgumentException.class, () -> CaptionCorpus.sha256(List.of("a\nb")));
        // SHA-256 of "a dog\na cat\n"
        assertEquals("9fa2cc77a6983ddf764126dcd7ea5c3c681ae20e6fd9a769e14eba846979edf7", h);
    }
}
