package dev.perfusion.fuzz;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.perfusion.text.ClipTokenizer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CLIP tokenizer: {@link ClipTokenizer#load} on any tokenizer folder, and encoding any text with the bundled
 * world model's tokenizer (plus a concept word), which must never fail and always give the same ids.
 */
class TokenizerFuzzTest {
    private static final Path WORLD = Path.of("models/world/tokenizer");
    private static final String[] FILES = {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"};

    /** Up to four files cut at NUL bytes: vocab.json, merges.txt, then the optional tokenizer_config.json and special_tokens_map.json. */
    @FuzzTest(maxDuration = "2m")
    @DictionaryEntries({"<|startoftext|>", "<|endoftext|>", "</w>", "#version: 0.2", "\"model_max_length\"", "\"bos_token\"",
            "\"eos_token\"", "\"pad_token\"", "\"unk_token\"", "\"content\"", "1e30"})
    void load(byte[] bytes) throws Exception {
        List<byte[]> parts = Readers.parts(bytes, FILES.length);
        Path dir = Readers.file(FILES[0], parts.get(0)).getParent();
        try {
            for (int i = 1; i < parts.size(); i++) Files.write(dir.resolve(FILES[i]), parts.get(i));
            ClipTokenizer t = Readers.readOrRefuse(dir.toString(), () -> ClipTokenizer.load(dir));
            if (t == null) return;
            for (String text : List.of("a photo of a cat", "Hello, WORLD! 123 ünïcödé 猫 🐱", "<|startoftext|>x<|endoftext|>")) {
                checkEncoding(t, text);
            }
        } finally {
            Readers.delete(dir.resolve(FILES[0]));
        }
    }

    private static ClipTokenizer world;
    private static ClipTokenizer worldWithConcept;

    /** Any UTF-16 text (two bytes a char, so unpaired surrogates too) through the bundled tokenizer. */
    @FuzzTest(maxDuration = "2m")
    void encode(byte[] bytes) throws IOException {
        if (world == null) {
            world = ClipTokenizer.load(WORLD);
            worldWithConcept = world.withAddedTokens(List.of("my-cat"));
        }
        String text = new String(bytes, 0, bytes.length & ~1, StandardCharsets.UTF_16BE);
        // checkEncoding encodes twice: words new to the BPE cache, then the cached ones, must give the same ids
        checkEncoding(worldWithConcept, text);
        checkEncoding(world, text);
    }

    /** Encodes {@code text} (which must not fail) and checks the ids and the model's input built from them. */
    private static int[] checkEncoding(ClipTokenizer t, String text) {
        int[] ids = t.encode(text);
        assertArrayEquals(ids, t.encode(text), "the same ids again");
        int limit = t.vocab().values().stream().mapToInt(Integer::intValue).max().orElse(-1);
        for (int id : ids) assertTrue(id >= 0 && id <= limit, "id " + id + " is in the vocabulary");
        ClipTokenizer.Encoding e = t.encodeForModel(text);
        assertEquals(t.maxLength(), e.ids().length);
        assertEquals(t.bosId(), e.ids()[0]);
        assertEquals(Math.max(0, ids.length - (t.maxLength() - 2)), e.droppedTokens());
        assertNotNull(t.decode(e.ids()));
        return ids;
    }
}
