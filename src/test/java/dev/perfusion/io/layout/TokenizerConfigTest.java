package dev.perfusion.io.layout;

import dev.perfusion.Fixtures;
import dev.perfusion.text.ClipTokenizer;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The special tokens prompts are read with. The resolved tokenizer config was computed and never used: every model
 * read its tokenizer folder's files, so an SD 2.x single file given SD 1.5's or CLIP's tokenizer folder for its
 * vocabulary padded with the end token (49407) where the model was trained with "!" (0), every picture other than
 * diffusers'.
 */
class TokenizerConfigTest {
    private static Path fixtureTokenizer() {
        return Fixtures.diffusers().resolve("tokenizer"); // CLIP's vocabulary; pads with <|endoftext|>
    }

    @Test
    void aSingleFileOnItsFamilysConfigsPadsAsTheFamilyDoesAndSaysSo() throws IOException {
        ModelConfigs sd21 = ModelConfigs.builtIn("sd21-v");
        List<String> notes = new ArrayList<>();
        Optional<com.fasterxml.jackson.databind.JsonNode> chosen =
                ModelSource.tokenizerConfig(ModelConfigs.tokenizerConfig(fixtureTokenizer()), sd21, notes);
        assertEquals("!", chosen.orElseThrow().path("pad_token").asText());
        assertEquals(1, notes.size(), notes.toString());
        assertTrue(notes.get(0).startsWith("the tokenizer folder pads with <|endoftext|>, the ") && notes.get(0).endsWith("with !"), notes.get(0));

        ClipTokenizer tokenizer = ClipTokenizer.load(fixtureTokenizer(), chosen);
        assertEquals("!", tokenizer.padToken());
        assertEquals(0, tokenizer.padId());
        long[] ids = tokenizer.encodeForModel("a cat").ids();
        assertEquals(0, ids[ids.length - 1], "padded with id 0, as diffusers pads SD 2.x");
        assertEquals(49407, ClipTokenizer.load(fixtureTokenizer()).padId(), "the folder alone pads with its end token");
    }

    @Test
    void aFolderModelKeepsItsOwnTokenizerFiles() throws IOException {
        ModelConfigs folder = ModelConfigs.fromFolder(Fixtures.diffusers());
        List<String> notes = new ArrayList<>();
        Optional<com.fasterxml.jackson.databind.JsonNode> own = ModelConfigs.tokenizerConfig(fixtureTokenizer());
        assertEquals(own, ModelSource.tokenizerConfig(own, folder, notes));
        assertTrue(notes.isEmpty(), notes.toString());
        ResolvedModel m = ModelSource.resolve(Fixtures.diffusers());
        assertEquals(ClipTokenizer.load(fixtureTokenizer()).padId(), m.tokenizer().padId());
        assertEquals(ClipTokenizer.load(fixtureTokenizer()).maxLength(), m.tokenizer().maxLength());
    }

    /**
     * convert writes the tokenizer as prompts were read: a folder model's files as they are (their form is what
     * transformers before 4.34 needs), a single file's family's special tokens where they won.
     */
    @Test
    void convertWritesTheTokenizerPromptsWereReadWith(@org.junit.jupiter.api.io.TempDir Path tmp) throws IOException {
        Path asIs = tmp.resolve("folder"), family = tmp.resolve("family");
        ModelConfigs.writeTokenizer(fixtureTokenizer(), Optional.of(Fixtures.diffusers()), "custom", asIs);
        for (String f : List.of("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json")) {
            assertArrayEquals(java.nio.file.Files.readAllBytes(fixtureTokenizer().resolve(f)), java.nio.file.Files.readAllBytes(asIs.resolve(f)), f);
        }
        ModelConfigs.writeTokenizer(fixtureTokenizer(), Optional.empty(), "sd21-v", family);
        assertArrayEquals(java.nio.file.Files.readAllBytes(fixtureTokenizer().resolve("vocab.json")), java.nio.file.Files.readAllBytes(family.resolve("vocab.json")));
        assertEquals(0, ClipTokenizer.load(family).padId(), "the family's pad token, read back from the written folder");
    }
}
