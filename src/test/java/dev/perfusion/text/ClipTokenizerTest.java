package dev.perfusion.text;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.perfusion.Fixtures;
import dev.perfusion.io.Npy;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertFalse;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class ClipTokenizerTest {

    private static JsonNode tokenizerCase() throws IOException {
        JsonNode cases = new ObjectMapper().readTree(Fixtures.sdTiny().resolve("cases.json").toFile()).get("cases");
        for (JsonNode c : cases) if ("tokenizer".equals(c.path("name").asText())) return c;
        throw new AssertionError("cases.json has no tokenizer case");
    }

    private static ClipTokenizer fixtureTokenizer() throws IOException {
        return ClipTokenizer.load(Fixtures.diffusers().resolve("tokenizer"));
    }

    @Test
    void everyPromptGivesTheGoldenRow() throws IOException {
        ClipTokenizer tok = fixtureTokenizer();
        assertEquals(49408, tok.vocabSize());
        assertEquals(77, tok.maxLength());
        assertEquals(49406, tok.bosId());
        assertEquals(49407, tok.eosId());
        assertEquals(49407, tok.padId());
        Npy.Array golden = Fixtures.golden("tokenizer_input_ids.npy");
        assertArrayEquals(new long[] {10, 77}, golden.shape());
        JsonNode perPrompt = tokenizerCase().get("per_prompt");
        assertEquals(10, perPrompt.size());
        for (JsonNode p : perPrompt) {
            int row = p.get("index").asInt();
            String prompt = p.get("prompt").asText();
            long[] expected = Arrays.copyOfRange(golden.longs(), row * 77, row * 77 + 77);
            ClipTokenizer.Encoding enc = tok.encodeForModel(prompt);
            assertArrayEquals(expected, enc.ids(), "prompt " + row + ": " + prompt);

            List<String> expectedBpe = new ArrayList<>();
            p.get("bpe_tokens").forEach(t -> expectedBpe.add(t.asText()));
            assertEquals(expectedBpe, tok.bpeTokens(prompt), "bpe tokens of prompt " + row);

            JsonNode untruncated = p.get("ids_untruncated");
            int[] ids = tok.encode(prompt);
            assertEquals(untruncated.size() - 2, ids.length, "untruncated length of prompt " + row);
            for (int i = 0; i < ids.length; i++) assertEquals(untruncated.get(i + 1).asInt(), ids[i]);

            assertEquals(p.get("truncated").asBoolean(), enc.truncated(), "truncated flag of prompt " + row);
            assertEquals(Math.max(0, p.get("n_untruncated").asInt() - 77), enc.droppedTokens());
        }
    }

    @Test
    void longPromptsAreTruncatedEndingWithEos() throws IOException {
        ClipTokenizer tok = fixtureTokenizer();
        String a77 = "a ".repeat(76);
        ClipTokenizer.Encoding fits = tok.encodeForModel("a ".repeat(75));
        assertFalse(fits.truncated());
        assertEquals(0, fits.droppedTokens());
        ClipTokenizer.Encoding cut = tok.encodeForModel(a77);
        assertTrue(cut.truncated());
        assertEquals(1, cut.droppedTokens());
        assertEquals(77, cut.ids().length);
        assertEquals(49406, cut.ids()[0]);
        assertEquals(49407, cut.ids()[76]);
        assertEquals(320, cut.ids()[75]);
    }

    @Test
    void helpersAndDecode() throws IOException {
        ClipTokenizer tok = fixtureTokenizer();
        assertEquals(List.of("cat</w>"), tok.tokensOf("cat"));
        assertEquals(List.of("cat</w>"), tok.tokensOf("Cat"));
        assertEquals(2368, tok.tokenId("cat</w>").orElseThrow());
        assertTrue(tok.tokenId("no such token").isEmpty());
        ClipTokenizer.Encoding enc = tok.encodeForModel("A photo of a DOG, café 🐶");
        assertEquals("a photo of a dog , café 🐶", tok.decode(enc.ids()));
        // Special tokens inside the text are kept whole, not split into characters.
        assertArrayEquals(new int[] {320, 49407, 2368}, tok.encode("a<|endoftext|>cat"));
        assertArrayEquals(new int[] {320, 2368}, tok.encode("a\u0000\u200b c\u00ADat"));
    }

    @Test
    void ownVocabularySavesAndReloadsIdentically(@TempDir Path dir) throws IOException {
        ClipTokenizer clip = fixtureTokenizer();
        // A tiny vocabulary: the byte symbols, their word-final forms, a few merges, then bos/eos.
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (String s : List.of("!", "a", "c", "t", "o", "g", "d", "a</w>", "c</w>", "t</w>", "o</w>", "g</w>", "d</w>", "!</w>"))
            vocab.put(s, vocab.size());
        List<String[]> merges = List.of(new String[] {"c", "a"}, new String[] {"ca", "t</w>"}, new String[] {"d", "o"},
                new String[] {"do", "g</w>"});
        for (String[] m : merges) vocab.put(m[0] + m[1], vocab.size());
        vocab.put("<|startoftext|>", vocab.size());
        vocab.put("<|endoftext|>", vocab.size());
        ClipTokenizer own = ClipTokenizer.of(vocab, merges, 16, "!");
        assertEquals(0, own.padId());
        assertEquals(List.of("cat</w>", "dog</w>", "a</w>", "c", "o", "t</w>"), own.bpeTokens("Cat dog a cot"));
        own.save(dir);
        assertTrue(Files.readString(dir.resolve("merges.txt")).startsWith("#version: 0.2\n"));
        ClipTokenizer back = ClipTokenizer.load(dir);
        assertEquals(own.vocab(), back.vocab());
        assertEquals(16, back.maxLength());
        assertEquals(own.padId(), back.padId());
        for (String text : List.of("cat dog", "a cat, a dog", "dog cat ".repeat(10), "")) {
            assertArrayEquals(own.encodeForModel(text).ids(), back.encodeForModel(text).ids(), text);
            assertEquals(own.encodeForModel(text).droppedTokens(), back.encodeForModel(text).droppedTokens());
        }

        // The real CLIP vocabulary survives a round trip too.
        Path clipCopy = dir.resolve("clip");
        clip.save(clipCopy);
        ClipTokenizer clipBack = ClipTokenizer.load(clipCopy);
        String prompt = "it's a 3.5-inch, 1920x1080 picture of rock'n'roll -- 一只猫 in Tokyo";
        assertArrayEquals(clip.encodeForModel(prompt).ids(), clipBack.encodeForModel(prompt).ids());
        assertEquals(clip.vocabSize(), clipBack.vocabSize());
    }

    @Test
    void sd2StylePadTokenIsRead(@TempDir Path dir) throws IOException {
        Path src = Fixtures.diffusers().resolve("tokenizer");
        Files.copy(src.resolve("vocab.json"), dir.resolve("vocab.json"));
        Files.copy(src.resolve("merges.txt"), dir.resolve("merges.txt"));
        Files.writeString(dir.resolve("special_tokens_map.json"),
                "{\"bos_token\": {\"content\": \"<|startoftext|>\"}, \"eos_token\": \"<|endoftext|>\", \"pad_token\": \"!\"}");
        ClipTokenizer tok = ClipTokenizer.load(dir);
        assertEquals(0, tok.padId());
        assertEquals(77, tok.maxLength());
        long[] ids = tok.encodeForModel("a cat").ids();
        assertArrayEquals(new long[] {49406, 320, 2368, 49407, 0}, Arrays.copyOf(ids, 5));
        assertEquals(0, ids[76]);
        // transformers' slow tokenizer never splits special tokens, and with SD 2.x that includes the pad token "!".
        assertArrayEquals(new int[] {2117, 0, 0, 0}, tok.encode("beach!!!"));
        assertArrayEquals(new int[] {2117, 995}, fixtureTokenizer().encode("beach!!!"));
    }

    @Test
    void clearErrorsForMissingOrBrokenFiles(@TempDir Path dir) throws IOException {
        IOException e = assertThrows(IOException.class, () -> ClipTokenizer.load(dir.resolve("nope")));
        assertTrue(e.getMessage().contains("does not exist") && e.getMessage().contains("vocab.json"), e.getMessage());

        e = assertThrows(IOException.class, () -> ClipTokenizer.load(dir));
        assertTrue(e.getMessage().contains("has no vocab.json") && e.getMessage().contains("a tokenizer folder holds CLIP's vocab.json and merges.txt"),
                e.getMessage());

        Files.writeString(dir.resolve("vocab.json"), "{\"a</w>\": 0}");
        e = assertThrows(IOException.class, () -> ClipTokenizer.load(dir));
        assertTrue(e.getMessage().contains("has no merges.txt"), e.getMessage());

        Files.writeString(dir.resolve("merges.txt"), "#version: 0.2\na b\nbroken\n");
        e = assertThrows(IOException.class, () -> ClipTokenizer.load(dir));
        assertTrue(e.getMessage().contains("merges.txt line 3"), e.getMessage());

        Files.write(dir.resolve("merges.txt"), new byte[] {'a', ' ', (byte) 0xff, '\n'});
        e = assertThrows(IOException.class, () -> ClipTokenizer.load(dir));
        assertTrue(e.getMessage().startsWith(dir.resolve("merges.txt") + " is not UTF-8 text"), e.getMessage());

        Files.writeString(dir.resolve("merges.txt"), "#version: 0.2\na b\n");
        e = assertThrows(IOException.class, () -> ClipTokenizer.load(dir));
        assertTrue(e.getMessage().contains("<|startoftext|>"), e.getMessage());

        Files.writeString(dir.resolve("vocab.json"), "{\"a</w>\": \"zero\"}");
        e = assertThrows(IOException.class, () -> ClipTokenizer.load(dir));
        assertTrue(e.getMessage().contains("vocab.json") && e.getMessage().contains("integer"), e.getMessage());

        // an id of 2^31 - 1 would size a table of two billion tokens
        Files.writeString(dir.resolve("vocab.json"), "{\"a</w>\": 2147483647}");
        e = assertThrows(IOException.class, () -> ClipTokenizer.load(dir));
        assertTrue(e.getMessage().contains("'a</w>' maps to 2147483647, expected an integer id from 0 to 16777215"), e.getMessage());

        Files.write(dir.resolve("vocab.json"), "[1, 2".getBytes(StandardCharsets.UTF_8));
        e = assertThrows(IOException.class, () -> ClipTokenizer.load(dir));
        assertTrue(e.getMessage().contains("vocab.json") && e.getMessage().contains("not valid JSON"), e.getMessage());
    }

    /** Python's lower-casing and regex quirks that Java's would get wrong (checked against transformers). */
    @Test
    void lowerCasesAndSplitsAsPythonDoes() {
        assertEquals("ὀδός", ClipTokenizer.normalize("ὈΔΌΣ"), "final sigma");
        assertEquals("σⓐς", ClipTokenizer.normalize("ΣⓐΣ"), "Python counts U+24D0 as cased");
        assertEquals("aς\u0345", ClipTokenizer.pythonLower("aΣ\u0345"), "U+0345 is case-ignorable");
        assertEquals("σ ς", ClipTokenizer.normalize("Σ ΑΣ").replace("α", ""), "each word on its own");
        ClipTokenizer t = dev.perfusion.world.WorldTokenizer.create(32);
        assertEquals(List.of("x</w>", "y</w>"), t.bpeTokens("x\u0345y"), "U+0345 matches none of the pre-tokenizer's classes");
        assertFalse(t.bpeTokens("it'\u017F").contains("'</w>"), "'\u017F is a case-insensitive 's, one piece: " + t.bpeTokens("it'\u017F"));
        assertTrue(t.bpeTokens("it' \u017F").contains("'</w>"), "apart, the quote is a piece of its own");
    }
}
