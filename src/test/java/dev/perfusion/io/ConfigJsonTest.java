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
    private static final String UNET = "{\"in_channels\": 4, \"out_channels\": 4, \"block_out_channels\": [32, 64],"
            + " \"down_block_types\": [\"CrossAttnDownBlock2D\", \"DownBlock2D\"],"
            + " \"up_block_types\": [\"UpBlock2D\", \"CrossAttnUpBlock2D\"], \"cross_attention_dim\": 32";
    @TempDir Path tmp;

    private Path file(String name, String text) throws IOException {
        return Files.writeString(tmp.resolve(name), text);
    }

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

    @Test
    void aWrongTypeIsRefusedNamingTheFileKeyValueAndWhatWasExpected() throws IOException {
        Path unet = file("config.json", UNET + ", \"layers_per_block\": \"2\"}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> UNetConfig.load(unet));
        assertTrue(e.getMessage().startsWith(unet + ": UNet config: layers_per_block must be an integer, got \"2\""), e.getMessage());

        Path vae = file("vae.json", "{\"in_channels\": 3, \"out_channels\": 3, \"latent_channels\": 4,"
                + " \"block_out_channels\": [64], \"mid_block_add_attention\": 1}");
        e = assertThrows(IllegalArgumentException.class, () -> VaeConfig.load(vae));
        assertTrue(e.getMessage().startsWith(vae + ": VAE config: mid_block_add_attention must be true or false, got 1"), e.getMessage());

        Path text = file("text.json", "{\"vocab_size\": 10, \"hidden_size\": 8, \"intermediate_size\": 16,"
                + " \"max_position_embeddings\": 4, \"hidden_act\": [\"gelu\"]}");
        e = assertThrows(IllegalArgumentException.class, () -> ClipTextConfig.load(text));
        assertTrue(e.getMessage().startsWith(text + ": text encoder config: hidden_act must be a string, got [\"gelu\"]"), e.getMessage());

        Path scheduler = file("scheduler_config.json", "{\"beta_schedule\": 1}");
        IOException io = assertThrows(IOException.class, () -> SchedulerConfig.load(scheduler));
        assertTrue(io.getMessage().startsWith(scheduler + ": scheduler config: beta_schedule must be a string, got 1"), io.getMessage());
    }

    @Test
    void anOutOfRangeValueIsRefusedNamingTheFileKeyValueAndTheRange() throws IOException {
        Path unet = file("config.json", UNET + ", \"transformer_layers_per_block\": 0}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> UNetConfig.load(unet));
        assertTrue(e.getMessage().startsWith(unet + ": UNet config: transformer_layers_per_block must be between 1 and "
                + ConfigJson.MAX_LAYERS + ", got 0"), e.getMessage());

        // checked by the record itself, and still named in the file
        Path vae = file("vae.json", "{\"in_channels\": 3, \"out_channels\": 3, \"latent_channels\": 4,"
                + " \"block_out_channels\": [64], \"scaling_factor\": -0.5}");
        e = assertThrows(IllegalArgumentException.class, () -> VaeConfig.load(vae));
        assertTrue(e.getMessage().startsWith(vae + ": VAE config: scaling_factor must be a finite number above 0, got -0.5"), e.getMessage());

        Path scheduler = file("scheduler_config.json", "{\"timestep_spacing\": \"sometimes\"}");
        IOException io = assertThrows(IOException.class, () -> SchedulerConfig.load(scheduler));
        assertTrue(io.getMessage().startsWith(scheduler + ": scheduler config: unsupported timestep_spacing 'sometimes'"
                + " (supported: leading, trailing, linspace)"), io.getMessage());
    }

    @Test
    void aRefusalAfterDefaultsNamesThem() throws IOException {
        Path file = file("config.json", "{}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ConfigJson.load(file, "config.json", "test config", c -> c.inRange("b", c.integer("a", 0) - 1, 0, 9)));
        assertEquals(file + ": test config: b must be between 0 and 9, got -1 (absent keys took defaults: a=0)", e.getMessage());
    }

    @Test
    void notAnObjectOrNotAFileIsAnIOErrorNamingIt() throws IOException {
        Path list = file("config.json", "[1, 2]");
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
