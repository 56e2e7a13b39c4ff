package dev.perfusion.text;

import dev.perfusion.Fixtures;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class BpeLearnerTest {
    @Test
    void baseSymbolsAreInClipsOrder() throws Exception {
        ClipTokenizer clip = ClipTokenizer.load(Fixtures.diffusers().resolve("tokenizer"));
        List<String> bytes = ClipTokenizer.byteSymbols();
        for (int i = 0; i < 256; i++) {
            assertEquals(i, clip.tokenId(bytes.get(i)).orElseThrow(), bytes.get(i));
            assertEquals(256 + i, clip.tokenId(bytes.get(i) + "</w>").orElseThrow());
        }
    }

    @Test
    void frequentPairsMergeFirstAndEveryWordEndsAsOneToken() {
        ClipTokenizer t = BpeLearner.learn(Map.of("low", 5L, "lower", 2L, "newest", 6L, "widest", 3L), 16, 1000);
        assertEquals("e", t.merges().get(0)[0], "the most frequent pair (e, s) merges first");
        assertEquals("s", t.merges().get(0)[1]);
        for (String w : List.of("low", "lower", "newest", "widest")) assertEquals(List.of(w + "</w>"), t.tokensOf(w));
        ClipTokenizer capped = BpeLearner.learn(Map.of("newest", 6L), 16, 2);
        assertEquals(2, capped.merges().size());
        assertTrue(capped.tokensOf("newest").size() > 1, "a spent merge budget leaves words in pieces");
    }
}
