package dev.perfusion.world;

import dev.perfusion.text.ClipTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class WorldTokenizerTest {
    @TempDir Path tmp;

    @Test
    void everyWorldWordIsOneTokenAndCaptionsFit() throws Exception {
        ClipTokenizer t = WorldTokenizer.create(24, true);
        for (String w : Vocabulary.words()) assertEquals(1, t.tokensOf(w).size(), w + " -> " + t.tokensOf(w));
        WorldGenerator world = new WorldGenerator();
        int longest = 0;
        for (long seed = 5000; seed < 5500; seed++) {
            String caption = world.sample(seed).caption();
            ClipTokenizer.Encoding e = t.encodeForModel(caption);
            assertFalse(e.truncated(), caption);
            longest = Math.max(longest, t.encode(caption).length);
        }
        assertTrue(longest <= 22, "longest caption " + longest + " tokens");
        assertTrue(t.vocabSize() < 1000, "small vocabulary: " + t.vocabSize());
    }

    @Test
    void withoutDetailWordsItIsTheTokenizerOfTheRecipesBeforeThem() {
        ClipTokenizer t = WorldTokenizer.create(24);
        // recorded before captions could name details
        assertEquals(642, t.vocabSize());
        assertArrayEquals(new int[] {320, 622, 528, 320, 82, 79, 78, 83, 83, 68, 323, 636, 560, 86, 543, 327, 320, 587, 82, 66, 64, 81, 325},
                t.encode("a photo of a spotted white dog with a red scarf"));
        ClipTokenizer detailed = WorldTokenizer.create(24, true);
        assertTrue(detailed.vocabSize() > t.vocabSize(), detailed.vocabSize() + " tokens");
        assertEquals(11, detailed.encode("a photo of a spotted white dog with a red scarf").length, "a token a word");
    }

    @Test
    void savesReloadsAndKeepsUnseenWordsAndConceptWordsWorking() throws Exception {
        ClipTokenizer t = WorldTokenizer.create(24);
        t.save(tmp);
        ClipTokenizer back = ClipTokenizer.load(tmp);
        String caption = "a photo of a red car next to a green tree at night";
        assertArrayEquals(t.encodeForModel(caption).ids(), back.encodeForModel(caption).ids());
        assertArrayEquals(WorldTokenizer.create(24).encode(caption), t.encode(caption), "deterministic");
        assertTrue(t.tokensOf("zebra").size() > 1, "unseen words fall back to smaller pieces");
        ClipTokenizer withConcept = t.withAddedTokens(List.of("my-teddy"));
        assertEquals(1, withConcept.tokensOf("my-teddy").size());
        assertEquals(1, t.tokensOf("teddy").size(), "supercategories are single tokens");
    }

    @Test
    void conceptWordsMatchWhateverTheirCaseAndReadBackAsWritten() {
        ClipTokenizer t = WorldTokenizer.create(24).withAddedTokens(List.of("My-Teddy", "ÿ-kat"));
        int[] written = t.encode("a My-Teddy next to a ÿ-kat");
        assertEquals(6, written.length, "each concept word is one token");
        assertArrayEquals(written, t.encode("a my-teddy next to a Ÿ-KAT"), "CLIP lower-cases every other word of a prompt too");
        long[] ids = t.encodeForModel("a MY-TEDDY next to a ÿ-kat").ids();
        assertEquals(List.of("a", "My-Teddy", "next", "to", "a", "ÿ-kat"), t.positionNames(ids).subList(1, 7),
                "an added word reads back as its own text, not as byte symbols");
        assertEquals("a My-Teddy next to a ÿ-kat", t.decode(ids));
    }

    @Test
    void aConceptWordThatIsNotOneNewWordIsRefused() {
        ClipTokenizer t = WorldTokenizer.create(24);
        for (String word : List.of("Teddy", "my teddy", "my\tteddy", "my-teddy</w>", "")) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.withAddedTokens(List.of(word)), word);
            assertTrue(e.getMessage().contains("'" + word + "'"), e.getMessage());
        }
        assertTrue(assertThrows(IllegalArgumentException.class, () -> t.withAddedTokens(List.of("Teddy"))).getMessage()
                .contains("already a token of the vocabulary"));
        IllegalArgumentException twins = assertThrows(IllegalArgumentException.class, () -> t.withAddedTokens(List.of("my-dog", "My-Dog")));
        assertTrue(twins.getMessage().contains("differ only in case"), twins.getMessage());
        assertEquals(1, t.withAddedTokens(List.of("my-dog", "my-dog")).addedTokens().size(), "the same word twice is one token");
    }
}
