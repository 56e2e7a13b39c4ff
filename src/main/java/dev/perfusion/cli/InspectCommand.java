package dev.perfusion.cli;

import dev.perfusion.perfusion.ConceptSummary;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "inspect", mixinStandardHelpOptions = true, description = "Print a concept file's metadata and sizes.")
final class InspectCommand implements Callable<Integer> {
    @Parameters(paramLabel = "FILE", description = "A concept file (.safetensors) written by 'train'.")
    Path file;

    @Override
    public Integer call() throws Exception {
        ConceptSummary c = ConceptSummary.of(file, FileChecks.concept(file));
        System.out.println("concept file    " + file + " (" + String.format(Locale.ROOT, "%,d", c.bytes()) + " bytes)");
        System.out.println("word            " + c.word() + " (a kind of " + c.supercategory() + ")");
        System.out.println("default gate    beta " + c.beta() + ", tau " + c.tau());
        System.out.println("base model      " + c.baseModelHash());
        System.out.println("text encoder    " + c.textEncoderHash());
        System.out.println("text dim        " + c.textDim());
        System.out.println("layers          " + c.layers() + " cross-attention layers, widths " + c.layerWidths());
        System.out.println("stored floats   " + String.format(Locale.ROOT, "%,d", c.storedFloats())
                + " (embedding, i*, one key and one value target per layer)");
        c.training().forEach((k, v) -> System.out.println(String.format(Locale.ROOT, "training %-7s %s", k, v)));
        return 0;
    }
}
