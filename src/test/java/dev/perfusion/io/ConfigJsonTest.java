package dev.perfusion.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.perfusion.sampling.SchedulerConfig;
import dev.perfusion.text.ClipTextConfig;
import dev.perfusion.unet.UNetConfig;
import dev.perfusion.vae.VaeConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The one config reader's policy, on its own and as each component config applies it. */
class ConfigJsonTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Configs with only the keys that have no default, left open so that a test can add one. */
    private static final String UNET = "{\"in_channels\": 4, \"out_channels\": 4, \"block_out_channels\": [32, 64],"
            + " \"down_block_types\": [\"CrossAttnDownBlock2D\", \"DownBlock2D\"],"
            + " \"up_block_types\": [\"UpBlock2D\", \"CrossAttnUpBlock2D\"], \"cross_attention_dim\": 32";
    private static final String VAE = "{\"in_channels\": 3, \"out_channels\": 3, \"latent_channels\": 4, \"block_out_channels\": [64]";
    private static final String TEXT = "{\"vocab_size\": 10, \"hidden_size\": 8, \"intermediate_size\": 16, \"max_position_embeddings\": 4";
    @TempDir Path tmp;

    private static JsonNode json(String text) throws IOException {
        return JSON.readTree(text);
    }

    @Test
    void unknownKeysAreIgnoredAndLoggedOnce() throws Exception {
        // a key of a later diffusers version, named afresh so that no earlier test has logged it
        String key = "added_in_a_later_version_" + System.nanoTime();
        JsonNode config = json(UNET + ", \"" + key + "\": 3, \"_class_name\": \"UNet2DConditionModel\", \"attention_type\": null}");
        List<String> first = ConfigLog.during(() -> assertEquals(32, UNetConfig.fromJson(config).crossAttentionDim()));
        List<String> ignored = first.stream().filter(l -> l.contains("ignores keys")).toList();
        assertEquals(1, ignored.size(), first.toString());
        assertTrue(ignored.get(0).startsWith("UNet config ignores keys this program does not read: ")
                && ignored.get(0).contains(key + "=3"), ignored.get(0));
        assertFalse(ignored.get(0).contains("_class_name"), "metadata is not news");
        assertFalse(ignored.get(0).contains("attention_type"), "null is the reference's off");
        List<String> again = ConfigLog.during(() -> UNetConfig.fromJson(config));
        assertTrue(again.stream().noneMatch(l -> l.contains(key)), again.toString());
    }

    private interface Load {
        Object from(Path file) throws IOException;
    }

    /** {@code load} refuses a file holding {@code text} with a message that names the file, then says {@code message}. */
    private void assertRefused(Load load, String text, String message) throws IOException {
        Path file = Files.writeString(Files.createTempFile(tmp, "config", ".json"), text);
        Exception e = assertThrows(Exception.class, () -> load.from(file));
        assertTrue(e instanceof IllegalArgumentException || e instanceof IOException, e.toString());
        assertTrue(e.getMessage().startsWith(file + ": " + message), e.getMessage());
    }

    @Test
    void aWrongTypeIsRefusedNamingTheFileKeyValueAndWhatWasExpected() throws IOException {
        assertRefused(UNetConfig::load, UNET + ", \"layers_per_block\": \"2\"}",
                "UNet config: layers_per_block must be an integer, got \"2\"");
        assertRefused(VaeConfig::load, VAE + ", \"mid_block_add_attention\": 1}",
                "VAE config: mid_block_add_attention must be true or false, got 1");
        assertRefused(ClipTextConfig::load, TEXT + ", \"hidden_act\": [\"gelu\"]}",
                "text encoder config: hidden_act must be a string, got [\"gelu\"]");
        assertRefused(SchedulerConfig::load, "{\"beta_schedule\": 1}", "scheduler config: beta_schedule must be a string, got 1");
    }

    @Test
    void anOutOfRangeValueIsRefusedNamingTheFileKeyValueAndTheRange() throws IOException {
        assertRefused(UNetConfig::load, UNET + ", \"transformer_layers_per_block\": 0}",
                "UNet config: transformer_layers_per_block must be between 1 and " + ConfigJson.MAX_LAYERS + ", got 0");
        // checked by the record itself, and still named in the file
        assertRefused(VaeConfig::load, VAE + ", \"scaling_factor\": -0.5}",
                "VAE config: scaling_factor must be a finite number above 0, got -0.5");
        assertRefused(ClipTextConfig::load, TEXT + ", \"num_attention_heads\": 3}",
                "text encoder config: hidden_size 8 is not divisible by num_attention_heads 3");
        assertRefused(SchedulerConfig::load, "{\"timestep_spacing\": \"sometimes\"}",
                "scheduler config: unsupported timestep_spacing 'sometimes' (supported: leading, trailing, linspace)");
    }

    @Test
    void aRefusalAfterDefaultsNamesThem() throws IOException {
        Path file = Files.writeString(tmp.resolve("config.json"), "{}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ConfigJson.load(file, "config.json", "test config", c -> c.inRange("b", c.integer("a", 0) - 1, 0, 9)));
        assertEquals(file + ": test config: b must be between 0 and 9, got -1 (absent keys took defaults: a=0)", e.getMessage());
    }

    @Test
    void notAnObjectOrNotAFileIsAnIOErrorNamingIt() throws IOException {
        Path list = Files.writeString(tmp.resolve("config.json"), "[1, 2]");
        IOException e = assertThrows(IOException.class, () -> UNetConfig.load(list));
        assertEquals(list + ": not a JSON object", e.getMessage());
        Path folder = Files.createDirectories(tmp.resolve("unet"));
        e = assertThrows(IOException.class, () -> UNetConfig.load(folder));
        assertEquals("no UNet config at " + folder.resolve("config.json"), e.getMessage());
    }

    @Test
    void layersPerBlockIsOneNumberOrTheSameNumberOnEveryLevel() throws IOException {
        // diffusers takes an int or one int per level; the blocks here have one count on every level
        assertEquals(3, UNetConfig.fromJson(json(UNET + ", \"layers_per_block\": [3, 3]}")).layersPerBlock());
        assertEquals(3, UNetConfig.fromJson(json(UNET + ", \"layers_per_block\": 3}")).layersPerBlock());
        IllegalArgumentException mixed = assertThrows(IllegalArgumentException.class,
                () -> UNetConfig.fromJson(json(UNET + ", \"layers_per_block\": [2, 3]}")));
        assertTrue(mixed.getMessage().startsWith("UNet config: layers_per_block must be one number, or a list with the same"
                + " number for every level (levels with different counts are not supported), got [2, 3]"), mixed.getMessage());
        IllegalArgumentException length = assertThrows(IllegalArgumentException.class,
                () -> UNetConfig.fromJson(json(UNET + ", \"layers_per_block\": [2, 2, 2]}")));
        assertTrue(length.getMessage().startsWith("UNet config: layers_per_block must be a number or a list of 2 (one per level)"),
                length.getMessage());
    }

    @Test
    void schedulerKeysWhoseDefaultDependsOnTheClassStayAsWritten() throws IOException {
        SchedulerConfig empty = SchedulerConfig.empty();
        assertEquals("leading", empty.timestepSpacing(SchedulerConfig.ClassDefaults.DDIM));
        assertEquals("linspace", empty.timestepSpacing(SchedulerConfig.ClassDefaults.EULER));
        assertTrue(empty.setAlphaToOne(SchedulerConfig.ClassDefaults.DDIM));
        assertFalse(empty.setAlphaToOne(SchedulerConfig.ClassDefaults.PNDM));
        SchedulerConfig written = SchedulerConfig.fromJson(json("{\"timestep_spacing\": \"trailing\", \"set_alpha_to_one\": false}"));
        assertEquals("trailing", written.timestepSpacing(SchedulerConfig.ClassDefaults.EULER));
        assertFalse(written.setAlphaToOne(SchedulerConfig.ClassDefaults.DDIM));
        assertEquals(1000, written.numTrainTimesteps());
    }
}
