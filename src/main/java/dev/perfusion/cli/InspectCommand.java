package dev.perfusion.cli;

import dev.perfusion.perfusion.ConceptFile;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "inspect", mixinStandardHelpOptions = true, description = "Print a concept file's metadata and sizes.")
final class InspectCommand implements Callable<Integer> {
    @Parameters(paramLabel = "FILE", description = "A concept file (.safetensors) written by 'train'.")
    Path file;

    @Override
    public Integer call() throws Exception {
        ConceptFile c = FileChecks.concept(file);
        long[] dims = c.layerDims();
        long floats = 2 * c.textDim() + 2 * Arrays.stream(dims).sum();
        System.out.println("concept file    " + file + " (" + String.format(Locale.ROOT, "%,d", Files.size(file)) + " bytes)");
        System.out.println("word            " + c.word() + " (a kind of " + c.supercategory() + ")");
        System.out.println("default gate    beta " + c.beta() + ", tau " + c.tau());
        System.out.println("base model      " + c.baseModelHash());
        System.out.println("text encoder    " + c.textEncoderHash());
        System.out.println("text dim        " + c.textDim());
        System.out.println("layers          " + c.layerCount() + " cross-attention layers, widths " + Arrays.toString(dims));
        System.out.println("stored floats   " + String.format(Locale.ROOT, "%,d", floats)
                + " (embedding, i*, one key and one value target per layer)");
        c.settings().entrySet().stream().sorted(java.util.Map.Entry.comparingByKey())
                .forEach(e -> System.out.println(String.format(Locale.ROOT, "training %-7s %s", e.getKey(), e.getValue())));
        return 0;
    }
}
