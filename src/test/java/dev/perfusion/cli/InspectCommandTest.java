package dev.perfusion.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.perfusion.perfusion.ConceptFile;
import dev.perfusion.perfusion.GateProfile;
import dev.perfusion.perfusion.ProjectionEdit;
import dev.perfusion.world.Bundled;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** {@code inspect CONCEPT --prompt}: the gate on every token position, on the bundled model with the shipped my-cat. */
class InspectCommandTest {
    private static final Path MY_CAT = Bundled.concept("my-cat");

    @Test
    void jsonListsEveryPositionWithSAndGAndMarksTheConceptWord() throws Exception {
        String out = stdout("inspect", MY_CAT.toString(), "--prompt", "a photo of a my-cat on the grass", "--json");
        JsonNode root = new ObjectMapper().readTree(out);
        JsonNode tokens = root.get("tokens");
        assertEquals(32, tokens.size(), "one entry per position of the world model's 32-token context");
        assertEquals("<|startoftext|>", tokens.get(0).get("token").asText());
        int words = 0;
        for (JsonNode t : tokens) {
            assertEquals(1, t.get("s").size());
            double g = t.get("g").get(0).asDouble();
            assertTrue(g > 0 && g < 1, "a sigmoid gate: " + t);
            if (t.get("concept_word").asBoolean()) {
                words++;
                assertEquals("my-cat", t.get("token").asText());
                assertEquals(5, t.get("position").asInt());
                assertTrue(t.get("s").get(0).asDouble() > 0.9, "the trained word's encoding is its i*: " + t);
            }
        }
        assertEquals(1, words);
        assertEquals("<|endoftext|>", tokens.get(9).get("token").asText());
        assertEquals("<pad>", tokens.get(10).get("token").asText());
        assertEquals(0.7, root.get("concepts").get(0).get("beta").asDouble(), 1e-12);
    }

    @Test
    void theTableEndsWithTheSummaryOfSAtTheWordAndElsewhere() throws Exception {
        String out = stdout("inspect", MY_CAT.toString(), "--prompt", "a my-cat in the snow");
        assertTrue(out.contains("my-cat *"), out);
        assertTrue(out.matches("(?s).*my-cat: s at the concept word \\[(0\\.[89]|1\\.0)\\d*\\]; elsewhere \\(31 positions\\) largest .*, median .*"), out);
        assertTrue(out.matches("(?s).*\nmy-cat: word embedding at cos -?[01]\\.\\d{3} to cat's, norm \\d+\\.\\d{3} \\(cat's \\d\\.\\d{3}\\)\n.*"), out);
    }

    /** Textual inversion beside a gated concept: it has no gate column (its s was read from the other concept's, or past the end). */
    @Test
    void aConceptWithoutAGateBesideAGatedOneShowsNoGate(@TempDir Path dir) throws Exception {
        ConceptFile cat = ConceptFile.load(MY_CAT);
        Path ti = dir.resolve("my-teddy.safetensors");
        new ConceptFile("my-teddy", "teddy", cat.embedding(), cat.iStar(), new ProjectionEdit(ProjectionEdit.Kind.NONE, List.of(), List.of()),
                0.7, 0.15, cat.baseModelHash(), cat.textEncoderHash(), Map.of()).save(ti);
        String prompt = "a my-cat and a my-teddy on the grass";
        // alone, the same prompt's positions up to my-teddy's (the text encoder is causal: they do not see what follows)
        JsonNode alone = new ObjectMapper().readTree(stdout("inspect", MY_CAT.toString(), "--prompt", "a my-cat and a teddy on the grass", "--json")).get("tokens");
        int teddyAt = 5;
        for (List<String> order : List.of(List.of(ti.toString(), MY_CAT.toString()), List.of(MY_CAT.toString(), ti.toString()))) {
            int catColumn = order.indexOf(MY_CAT.toString()), tiColumn = 1 - catColumn;
            JsonNode tokens = new ObjectMapper().readTree(stdout("inspect", order.get(0), order.get(1), "--prompt", prompt, "--json")).get("tokens");
            assertEquals(alone.size(), tokens.size());
            assertEquals("my-teddy", tokens.get(teddyAt).get("token").asText());
            assertTrue(tokens.get(2).get("concept_word").asBoolean() && tokens.get(2).get("s").get(catColumn).asDouble() > 0.9, tokens.get(2).toString());
            for (int t = 0; t < tokens.size(); t++) {
                assertTrue(tokens.get(t).get("s").get(tiColumn).isNull() && tokens.get(t).get("g").get(tiColumn).isNull(), tokens.get(t).toString());
                if (t < teddyAt) assertEquals(alone.get(t).get("s").get(0).asDouble(), tokens.get(t).get("s").get(catColumn).asDouble(), 1e-6, "my-cat's own s at " + t);
            }
            String table = stdout("inspect", order.get(0), order.get(1), "--prompt", prompt);
            assertTrue(table.contains("my-teddy: no gate (textual inversion: only the word's embedding is learned)"), table);
            assertTrue(table.contains("no gate") && !table.contains("NaN"), table);
        }
    }

    @Test
    void aGateOpenAtAnotherConceptsWordGetsANote() throws Exception {
        ConceptFile cat = ConceptFile.load(MY_CAT);
        ConceptFile teddy = new ConceptFile("my-teddy", "teddy", cat.embedding(), cat.iStar(), cat.edit(), 0.7, 0.15, cat.baseModelHash(),
                cat.textEncoderHash(), Map.of());
        List<GateProfile.Position> positions = List.of(
                new GateProfile.Position(0, "a", new double[] {0.01, 0.02}, new double[] {0.01, 0.01}, false),
                new GateProfile.Position(1, "my-cat", new double[] {0.98, 0.77}, new double[] {0.87, 0.61}, true),
                new GateProfile.Position(2, "my-teddy", new double[] {0.40, 1.01}, new double[] {0.10, 0.88}, true));
        GateProfile profile = new GateProfile("a my-cat my-teddy", List.of(cat, teddy), positions);
        assertEquals(List.of(new GateProfile.Crossing("my-cat", "my-teddy", 2, 0.40, 0.10), new GateProfile.Crossing("my-teddy", "my-cat", 1, 0.77, 0.61)),
                profile.crossings());
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        InspectCommand.print(profile, new PrintStream(bytes, true, StandardCharsets.UTF_8));
        String out = bytes.toString(StandardCharsets.UTF_8);
        assertTrue(out.contains("note: my-teddy's gate opens at my-cat (position 1: s 0.770, g 0.610), so its key and value reach that object too"), out);
        assertFalse(out.contains("note: my-cat's gate"), "a gate of 0.10 is shut enough: " + out);
    }

    @Test
    void aConceptMadeForAUNetOfOtherDepthIsNamedWithBothShapes(@TempDir Path dir) throws Exception {
        ConceptFile cat = ConceptFile.load(MY_CAT);
        int layers = cat.layerCount();
        // as if trained on a UNet with one cross-attention layer fewer (a shallower model of the same text encoder)
        ProjectionEdit shallower = new ProjectionEdit(cat.edit().kind(), cat.edit().keys().subList(0, layers - 1), cat.edit().values().subList(0, layers - 1));
        Path file = dir.resolve("shallow-cat.safetensors");
        new ConceptFile("my-cat", "cat", cat.embedding(), cat.iStar(), shallower, 0.7, 0.15, cat.baseModelHash(), cat.textEncoderHash(), Map.of())
                .save(file);
        CliRun r = CliRun.of("inspect", file.toString(), "--prompt", "a my-cat on the grass");
        assertNotEquals(0, r.rc(), r.all());
        assertTrue(r.err().contains(file + ": concept 'my-cat' was made for a model with") && r.err().contains("cross-attention widths"), r.all());
        assertFalse(r.err().contains("target output o*"), "the layer-level message is not the user's: " + r.all());
    }

    /** Shown on a model it was not made for (here another text encoder layer), but not as if it were. */
    @Test
    void aConceptMadeForAnotherClipSkipIsShownWithAWarning() {
        CliRun r = CliRun.of("inspect", MY_CAT.toString(), "--prompt", "a my-cat on the grass", "--clip-skip", "1");
        assertEquals(0, r.rc(), r.all());
        assertTrue(r.err().contains("warning: " + MY_CAT + ": concept 'my-cat' was trained on the text encoder with clip skip 0, this run uses 1"), r.all());
        assertFalse(CliRun.of("inspect", MY_CAT.toString(), "--prompt", "a my-cat on the grass").err().contains("warning"));
    }

    @Test
    void jsonNeedsAPrompt() {
        assertNotEquals(0, Main.run("inspect", MY_CAT.toString(), "--json"));
    }

    private static String stdout(String... args) {
        CliRun r = CliRun.of(args);
        assertEquals(0, r.rc(), r.all());
        return r.out();
    }
}
