package dev.perfusion.cli;

import dev.perfusion.io.layout.ModelInputException;
import dev.perfusion.io.layout.ModelSource;
import dev.perfusion.io.layout.ResolvedModel;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;

/** How a model is read beside its path: what every command that opens a model shares (a mixin). */
final class SourceOptions {
    @Option(names = "--config", paramLabel = "DIR",
            description = "A diffusers folder whose config files describe the model (for single files that are not standard SD 1.x/2.x).")
    Path config;

    @Option(names = "--tokenizer", paramLabel = "DIR",
            description = "A folder holding CLIP's vocab.json and merges.txt (default: the model's or --config's tokenizer/).")
    Path tokenizer;

    @Option(names = "--family", paramLabel = "NAME", converter = Choices.Family.class, completionCandidates = Choices.Family.class,
            description = "Force a built-in family for a single file: ${COMPLETION-CANDIDATES} (v-prediction cannot be detected from weights).")
    String family;

    @Option(names = "--non-ema", description = "Use a checkpoint's non-EMA UNet weights even when it holds EMA copies (model_ema.*), which are used by default.")
    boolean nonEma;

    ModelSource.Options options() {
        if (family != null && config != null) throw new IllegalArgumentException("give either --family or --config, not both");
        ModelSource.Options options = ModelSource.Options.defaults();
        if (config != null) options = options.withConfig(config);
        if (tokenizer != null) options = options.withTokenizer(tokenizer);
        if (family != null) options = options.withFamily(family);
        if (nonEma) options = options.withNonEma();
        return options;
    }

    /** The model's configs, tokenizer folder and weight headers, without reading weights; errors name the flag. */
    ResolvedModel resolve(Path model) throws IOException {
        try {
            return ModelSource.resolve(model, options());
        } catch (ModelInputException e) {
            throw Flags.of(e);
        }
    }
}
