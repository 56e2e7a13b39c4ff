package dev.perfusion.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.perfusion.pretrain.BaseModelRecipe;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The recipe `pretrain`'s options make, without training anything. */
class PretrainCommandTest {
    private static BaseModelRecipe recipe(String... args) throws Exception {
        PretrainCommand command = new PretrainCommand();
        new CommandLine(command).parseArgs(args);
        return command.recipe();
    }

    /**
     * Stopped from outside mid-stage, a run ends at its step: it keeps that step in a checkpoint (none would be written
     * otherwise here, with --checkpoint-every 0) and says so, and no thread computes as the process exits (stopped so
     * mid-step, half the runs crashed in libtorch's exit).
     */
    @Test
    void aPretrainingStoppedFromOutsideKeepsTheStepItReached(@TempDir Path tmp) throws Exception {
        Path work = tmp.resolve("work"), log = tmp.resolve("log");
        Process child = new ProcessBuilder(CliRun.childCommand("1g", List.of(), "pretrain", "--recipe", "standard", "--work", work.toString(),
                "--vae-steps", "100000", "--train-steps", "2", "--checkpoint-every", "0", "--sample-every", "0", "--threads", "2"))
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            // waits for the VAE stage's first steps; a guard bounds it, not a speed check
            for (int i = 0; i < 60_000 && !Files.readString(log).contains("/100000") && child.isAlive(); i++) Thread.sleep(10);
            assertTrue(Files.readString(log).contains("/100000"), Files.readString(log));
            child.destroy(); // SIGTERM, as Ctrl-C's SIGINT: the JVM's shutdown hooks run
            assertTrue(child.waitFor(2, java.util.concurrent.TimeUnit.MINUTES));
        } finally {
            child.destroyForcibly();
        }
        String said = Files.readString(log);
        assertTrue(said.matches("(?s).*\nstopped from outside, vae step \\d+ \\(loss [0-9.]+\\), kept in " + java.util.regex.Pattern.quote(work.toString())
                + "; run the same command to resume\n"), said);
        assertFalse(said.contains("fatal error"), said);
        assertTrue(Files.isRegularFile(work.resolve("checkpoint-vae.safetensors")), "the step reached is kept");
    }

    @Test
    void theDefaultIsTheShippedFrozenTextRecipe() throws Exception {
        assertEquals(BaseModelRecipe.frozenText(), recipe());
        assertTrue(recipe().contrastive().ownTokenPadding());
        assertFalse(recipe("--no-own-token-padding").contrastive().ownTokenPadding());
        assertEquals(0.25, recipe("--side-word-weight", "0.25").contrastive().sideWordWeight());
        assertEquals(77, recipe("--contrastive-steps", "77").contrastive().steps());
        assertEquals(1.0, recipe().contrastive().colourBindingWeight(), "the shipped model's colour binding");
        assertEquals(0.5, recipe("--colour-binding-weight", "0.5").contrastive().colourBindingWeight());
        assertEquals(0.0, recipe("--colour-binding-weight", "0").contrastive().colourBindingWeight());
        assertEquals(0.03, recipe().attentionLocalization(), "the shipped model's localization");
        assertEquals(BaseModelRecipe.Localization.GAP, recipe().localization());
        assertEquals(0.0, recipe("--attention-localization", "0").attentionLocalization());
        assertEquals(1, recipe().unetLayersPerBlock());
        assertEquals(2, recipe("--unet-layers", "2").unetLayersPerBlock());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> recipe("--unet-layers", "0"));
        assertEquals("--unet-layers: UNet layers per level 0: expected at least 1", e.getMessage());
        assertEquals(0.0, recipe().decoderAdversarialWeight(), "the decoder learns with L1 alone unless asked");
        assertEquals(0.5, recipe("--decoder-adversarial", "0.5").decoderAdversarialWeight());
        e = assertThrows(IllegalArgumentException.class, () -> recipe("--decoder-adversarial", "-1"));
        assertEquals("--decoder-adversarial: decoder adversarial weight -1.0: expected a finite number >= 0", e.getMessage());
        assertEquals(300, recipe("--decoder-adversarial", "0.5").criticAloneSteps(), "SD's practice: the critic learns alone first");
        assertEquals(50, recipe("--decoder-adversarial", "0.5", "--decoder-critic-alone", "50").criticAloneSteps());
        assertEquals(recipe("--decoder-adversarial", "0.5"), recipe("--decoder-adversarial", "0.5", "--decoder-critic-alone", "300"),
                "the default given in words is the default: a run resumed so goes on");
        assertNull(BaseModelRecipe.standard().withDecoderAdversarial(0.5).withDecoderCriticAlone(50).withDecoderAdversarial(0).decoderCriticAlone(),
                "no critic, no critic setting recorded");
        e = assertThrows(IllegalArgumentException.class, () -> recipe("--decoder-critic-alone", "50"));
        assertEquals("--decoder-critic-alone needs a patch critic (--decoder-adversarial W)", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> recipe("--decoder-adversarial", "0.5", "--decoder-critic-alone", "-1"));
        assertEquals("--decoder-critic-alone: decoder critic alone -1: expected a number of steps >= 0", e.getMessage());
        assertEquals(0.5, recipe().captionDetails(), "the shipped recipe's captions name details");
        assertEquals(0.0, recipe("--caption-details", "0").captionDetails());
        e = assertThrows(IllegalArgumentException.class, () -> recipe("--caption-details", "2"));
        assertEquals("--caption-details: caption details 2.0: expected a share in [0, 1]", e.getMessage());
        assertTrue(recipe().localizedDetails(), "the shipped model's last run localized the detail words");
        assertTrue(recipe("--localize-details").localizedDetails());
        assertFalse(recipe("--caption-details", "0").localizedDetails(), "no detail words, nothing to localize");
        assertFalse(recipe("--attention-localization", "0").localizedDetails(), "no localization, none of the details");
        assertFalse(recipe("--no-localize-details").localizedDetails());
        e = assertThrows(IllegalArgumentException.class, () -> recipe("--caption-details", "0", "--localize-details"));
        assertEquals("--localize-details needs attention localization (--attention-localization W) and captions that name details (--caption-details SHARE)", e.getMessage());
        assertEquals(0, recipe().contrastive().imageLayers());
        assertEquals(2, recipe("--image-tower-layers", "2").contrastive().imageLayers());
        e = assertThrows(IllegalArgumentException.class, () -> recipe("--image-tower-layers", "-1"));
        assertEquals("--image-tower-layers: image tower layers -1: expected at least 0", e.getMessage());
        assertFalse(recipe().contrastive().accessoryNegatives());
        assertTrue(recipe("--accessory-negatives").contrastive().accessoryNegatives());
        e = assertThrows(IllegalArgumentException.class, () -> recipe("--caption-details", "0", "--accessory-negatives"));
        assertEquals("--accessory-negatives needs captions that name details (--caption-details SHARE)", e.getMessage());
        assertEquals(0.0, recipe().accessoryLossWeight(), "an even loss unless asked");
        assertEquals(4.0, recipe("--accessory-loss-weight", "4").accessoryLossWeight());
        e = assertThrows(IllegalArgumentException.class, () -> recipe("--accessory-loss-weight", "-1"));
        assertEquals("--accessory-loss-weight: accessory loss weight -1.0: expected a finite number >= 0", e.getMessage());
        assertFalse(recipe().unnamedPlacementMiddle(), "captions leave out any placement unless asked");
        assertTrue(recipe("--unnamed-placement-middle").unnamedPlacementMiddle());
        assertFalse(recipe("--no-unnamed-placement-middle").unnamedPlacementMiddle());
    }

    /** Without the own-token objective there is none on the padding either, unless asked for, which is refused. */
    /** fp32 unless asked; a recipe recorded in bf16 continues in bf16 unless told otherwise; other spellings are refused. */
    @Test
    void precisionIsTheRecipesUnlessAsked(@TempDir Path tmp) throws Exception {
        assertFalse(recipe().bf16());
        assertTrue(recipe("--precision", "bf16").bf16());
        assertFalse(recipe("--precision", "FP32").bf16());
        Files.writeString(tmp.resolve("recipe.json"), "{\"recipe\": "
                + new ObjectMapper().writeValueAsString(BaseModelRecipe.frozenText().withBf16(true)) + "}");
        assertTrue(recipe("--continue-from", tmp.toString()).bf16(), "the recorded recipe's");
        assertFalse(recipe("--continue-from", tmp.toString(), "--precision", "fp32").bf16());
        CommandLine.ParameterException e = assertThrows(CommandLine.ParameterException.class, () -> recipe("--precision", "fp16"));
        assertTrue(e.getMessage().contains("'fp16' is not one of fp32, bf16"), e.getMessage());
    }

    @Test
    void vaeSizeSetsTheVaeAndTheUNetsLatentChannels() throws Exception {
        BaseModelRecipe wide = recipe("--vae-size", "64,128,128x8");
        assertEquals(List.of(64, 128, 128), wide.vaeChannels());
        assertEquals(8, wide.latentChannels());
        assertEquals(8, wide.unetConfig().inChannels(), "the UNet reads the new latents");
        assertEquals(16, wide.latentSize(), "three levels: 64x64 pictures onto 16x16 latents");
        assertEquals(BaseModelRecipe.frozenText().unetChannels(), wide.unetChannels(), "the rest is the recipe's");
        for (String[] bad : new String[][] {{"64,128x8x2", "must be C1,C2,...xLATENT"}, {"64,a,128x8", "expected C1,C2,...xLATENT"}, {"64,128,128x8,2", "expected C1,C2,...xLATENT"},
                {"64,100,128x8", "multiple of its 16 norm groups"}, {"64,128,128x0", "latent channels 0"},
                {"16,16,16,16,16,16,16,16x4", "8 levels do not divide 64x64"}}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> recipe("--vae-size", bad[0]));
            assertTrue(e.getMessage().startsWith("--vae-size") && e.getMessage().contains(bad[1]), bad[0] + ": " + e.getMessage());
        }
    }

    @Test
    void unetChannelsSetTheUNetsWidthPerLevel() throws Exception {
        BaseModelRecipe wide = recipe("--unet-channels", "64,128,256");
        assertEquals(List.of(64, 128, 256), wide.unetChannels());
        assertEquals(List.of(64, 128, 256), wide.unetConfig().blockOutChannels());
        assertEquals(16, wide.unetConfig().normNumGroups(), "the norm groups stay, so a widened UNet's groups hold the copies of the old ones");
        assertEquals(BaseModelRecipe.frozenText().vaeChannels(), wide.vaeChannels(), "the rest is the recipe's");
        for (String[] bad : new String[][] {{"32,64,128,128,128", "5 levels do not fit 16x16 latents"}, {"64,x,256", "expected C1,C2,..."}, {"64,120,256", "multiple of its 16 norm groups"}}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> recipe("--unet-channels", bad[0]));
            assertTrue(e.getMessage().startsWith("--unet-channels") && e.getMessage().contains(bad[1]), bad[0] + ": " + e.getMessage());
        }
    }

    @Test
    void imageSizeSetsThePicturesAndTheLatentsFollow() throws Exception {
        BaseModelRecipe large = recipe("--image-size", "128");
        assertEquals(128, large.imageSize());
        assertEquals(32, large.latentSize(), "the VAE's factor 4");
        assertEquals(32, large.unetConfig().sampleSize());
        BaseModelRecipe sdLike = recipe("--image-size", "128", "--vae-size", "32,64,64,64x8");
        assertEquals(16, sdLike.latentSize(), "factor 8, as SD");
        for (String[] bad : new String[][] {{"100", "multiple of the VAE's factor 4"}, {"4", "at least 8"}}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> recipe("--image-size", bad[0]));
            assertTrue(e.getMessage().startsWith("--image-size") && e.getMessage().contains(bad[1]), bad[0] + ": " + e.getMessage());
        }
        IllegalArgumentException tower = assertThrows(IllegalArgumentException.class, () -> recipe("--image-size", "36"));
        assertTrue(tower.getMessage().contains("image tower's 8"), tower.getMessage());
    }

    @Test
    void noObjectiveMeansNoneOnThePadding() throws Exception {
        BaseModelRecipe none = recipe("--own-token-weight", "0");
        assertEquals(0.0, none.contrastive().ownTokenWeight());
        assertFalse(none.contrastive().ownTokenPadding(), "recorded as trained");
        assertEquals(0.0, none.contrastive().colourBindingWeight(), "no objective, so no colour binding either");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> recipe("--own-token-weight", "0", "--own-token-padding"));
        assertTrue(e.getMessage().contains("--own-token-padding needs the own-token objective"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> recipe("--own-token-weight", "0", "--colour-binding-weight", "1"));
        assertTrue(e.getMessage().contains("--colour-binding-weight needs the own-token objective"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> recipe("--colour-binding-weight", "-1"));
        assertEquals("--colour-binding-weight must be at least 0, got -1.0", e.getMessage());
    }

    @Test
    void contrastiveOptionsNeedTheFrozenTextRecipe() {
        for (String[] args : new String[][] {{"--own-token-padding"}, {"--side-word-weight", "0"}, {"--contrastive-only"}, {"--swapped-side-negatives"}, {"--colour-binding-weight", "1"}}) {
            String[] withRecipe = new String[args.length + 2];
            withRecipe[0] = "--recipe";
            withRecipe[1] = "standard";
            System.arraycopy(args, 0, withRecipe, 2, args.length);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> recipe(withRecipe));
            assertTrue(e.getMessage().contains("needs --recipe frozen-text"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> recipe("--side-word-weight", "1.5"));
    }
}
