package dev.perfusion.cli;

import dev.perfusion.io.Safetensors;
import dev.perfusion.io.layout.ModelExport;
import dev.perfusion.io.layout.ResolvedModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "convert", mixinStandardHelpOptions = true,
        description = {"Convert a model (a .ckpt, ...) to safetensors.",
                "IN is any model --model takes (a PyTorch .ckpt is read without running it). OUT is written whole or not at all:"
                        + " a name ending in .safetensors gets one file in the original (LDM) layout, any other name a new diffusers folder."})
final class ConvertCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "IN", description = "The model: a diffusers folder, a .safetensors file or a PyTorch checkpoint (.ckpt, .pt, .pth, .bin).")
    Path in;

    @Parameters(index = "1", paramLabel = "OUT", description = "Where to write it: FILE.safetensors, or a folder that does not exist yet.")
    Path out;

    @Mixin SourceOptions source;

    /** The stored precision. */
    enum StoredDtype {
        FP16(Safetensors.StoredType.F16), FP32(Safetensors.StoredType.F32);

        final Safetensors.StoredType type;

        StoredDtype(Safetensors.StoredType type) { this.type = type; }
    }

    @Option(names = "--dtype", defaultValue = "fp16", paramLabel = "TYPE", converter = Choices.StoredDtype.class, completionCandidates = Choices.StoredDtype.class,
            description = "The stored precision: ${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE}).")
    StoredDtype dtype;

    @Option(names = "--to", paramLabel = "KIND", converter = Choices.ExportTarget.class, completionCandidates = Choices.ExportTarget.class,
            description = "What to write: ${COMPLETION-CANDIDATES} (default: a single file when OUT ends in .safetensors, else a diffusers folder).")
    ModelExport.Target to;

    @Override
    public Integer call() throws Exception {
        ModelExport.Target target = to != null ? to : ModelExport.targetOf(out);
        if (target == ModelExport.Target.SINGLE_FILE) {
            if (java.nio.file.Files.isDirectory(out)) throw new IllegalArgumentException("OUT " + out + " is a folder; a single file needs a file name");
            // a model file can be hours of someone's training: replaced only by their hand, as a folder is
            if (java.nio.file.Files.exists(out)) throw new IllegalArgumentException("OUT " + out + " exists: give a new file name (or remove it first)");
            FileChecks.writableFolder(out.toAbsolutePath().getParent());
        } else if (java.nio.file.Files.exists(out)) {
            throw new IllegalArgumentException("OUT " + out + " exists: a diffusers folder is written to a new folder");
        }
        long started = System.nanoTime();
        ResolvedModel m = source.resolve(in);
        TerminalProgress progress = new TerminalProgress(System.out);
        m.notes().forEach(progress::message);
        ModelExport.Written w = target == ModelExport.Target.SINGLE_FILE ? ModelExport.singleFile(m, out, dtype.type, progress)
                : ModelExport.diffusersFolder(m, out, dtype.type, progress);
        progress.message(String.format(Locale.ROOT, "wrote %s (%s, %s, %,d tensors, %.2f GB) in %s", w.target(),
                target == ModelExport.Target.SINGLE_FILE ? "single file" : "diffusers folder", Choices.lowerCase(dtype), w.tensors(),
                w.bytes() / 1e9, TerminalProgress.formatSeconds((System.nanoTime() - started) / 1e9)));
        if (target == ModelExport.Target.DIFFUSERS_FOLDER && m.tokenizerDir().isEmpty()) {
            progress.message("note: the model has no tokenizer, so the folder has none: copy one into " + out.resolve("tokenizer")
                    + " (vocab.json, merges.txt) or give --tokenizer when converting");
        }
        return 0;
    }
}
