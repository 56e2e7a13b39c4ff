package dev.perfusion.cli;

import dev.perfusion.Fixtures;
import dev.perfusion.io.Safetensors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** `convert` and `inspect` on the reference's PyTorch checkpoints. */
class ConvertCommandTest {
    @TempDir Path tmp;


    private static CliRun run(String... args) {
        return CliRun.of(args);
    }

    @Test
    void convertsAnEmaCkptAndInspectSaysWhatItHolds() throws Exception {
        String ckpt = Fixtures.sdTiny().resolve("pickle/sd-tiny-ema-zip-fp16.ckpt").toString(), config = Fixtures.diffusers().toString();
        CliRun inspect = run("inspect", ckpt, "--config", config);
        assertEquals(0, inspect.rc(), inspect.err());
        for (String line : new String[] {"layout          single file (PyTorch zip checkpoint, weights under 'state_dict')",
                "family          custom (configs from " + config, "UNet            1,106,212 parameters in 304 tensors, F16",
                "total           3,777,242 parameters", "weights         sd-tiny-ema-zip-fp16.ckpt: the EMA UNet weights (model_ema.*",
                "checkpoint      global_step 470000"}) {
            assertTrue(inspect.out().contains(line), line + "\n" + inspect.out());
        }
        Path out = tmp.resolve("tiny.safetensors");
        CliRun convert = run("convert", ckpt, out.toString(), "--config", config, "--dtype", "fp32");
        assertEquals(0, convert.rc(), convert.err());
        assertTrue(convert.out().contains("wrote " + out + " (single file, fp32, 600 tensors"), convert.out());
        assertEquals("F32", Safetensors.open(out).dtype("model.diffusion_model.input_blocks.0.0.weight"));
        CliRun folder = run("convert", out.toString(), tmp.resolve("folder").toString(), "--config", config, "--to", "diffusers-folder");
        assertEquals(0, folder.rc(), folder.err());
        assertTrue(Files.isRegularFile(tmp.resolve("folder/unet/diffusion_pytorch_model.safetensors")));
        CliRun exists = run("convert", ckpt, tmp.resolve("folder").toString(), "--config", config);
        assertEquals(2, exists.rc());
        assertTrue(exists.err().contains("exists: a diffusers folder is written to a new folder"), exists.err());
        // nor is a file replaced: the fp32 file stays as it was, not overwritten with fp16
        long before = Files.size(out);
        CliRun again = run("convert", ckpt, out.toString(), "--config", config);
        assertEquals(2, again.rc());
        assertTrue(again.err().contains("OUT " + out + " exists: give a new file name (or remove it first)"), again.err());
        assertEquals(before, Files.size(out));
    }

    @Test
    void hostileCheckpointsAreRefusedWithOneClearLine() {
        String eval = Fixtures.sdTiny().resolve("pickle/hostile/eval-zip.ckpt").toString();
        CliRun r = run("convert", eval, tmp.resolve("x.safetensors").toString());
        assertEquals(2, r.rc());
        assertTrue(r.err().startsWith("error: " + eval + ": eval-zip/data.pkl: the pickle refers to the global '__builtin__.eval'"), r.err());
        assertFalse(Files.exists(tmp.resolve("x.safetensors")));
        CliRun inspect = run("inspect", eval);
        assertEquals(2, inspect.rc());
        assertTrue(inspect.err().contains("which is not allowed"), inspect.err());
    }
}
