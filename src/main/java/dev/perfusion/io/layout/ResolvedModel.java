package dev.perfusion.io.layout;

import com.fasterxml.jackson.databind.JsonNode;
import dev.perfusion.io.StateDict;
import dev.perfusion.sampling.SchedulerConfig;
import dev.perfusion.text.ClipTextConfig;
import dev.perfusion.unet.UNetConfig;
import dev.perfusion.vae.VaeConfig;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * A model ready to build: its configs, read and checked, and, per component, its weights under diffusers/transformers
 * names (whatever layout they were stored in).
 *
 * @param source              the folder or file the weights come from
 * @param layout              how {@code source} is laid out
 * @param family              {@code sd15}, {@code sd21-base}, {@code sd21-v} when the configs match a built-in family
 *                            ({@link ModelFamily#classify}), else {@code custom}
 * @param configOrigin        where the configs come from (a folder, or "built-in &lt;family&gt; configs"), for messages
 * @param tokenizerConfig     tokenizer_config.json with special_tokens_map.json over it (pad token, max length...),
 *                            from the tokenizer folder if it has them, else from the configs' tokenizer/
 * @param tokenizerDir        a folder holding vocab.json and merges.txt: the one given, else the model folder's
 *                            tokenizer/, else the config folder's tokenizer/; empty for a single file without them
 * @param openClipTextEncoder whether the text encoder was stored as an OpenCLIP tower (SD 2.x single files)
 * @param configFolder        the folder the configs were read from; empty for built-in configs (those of {@code family})
 * @param notes               what the loader chose that the user should be told (which of a file's EMA and non-EMA
 *                            weights were used)
 */
public record ResolvedModel(Path source, CheckpointLayout layout, String family, String configOrigin,
                            UNetConfig unetConfig, VaeConfig vaeConfig, ClipTextConfig textEncoderConfig, SchedulerConfig schedulerConfig,
                            Optional<JsonNode> tokenizerConfig, Optional<Path> tokenizerDir,
                            StateDict unetWeights, StateDict vaeWeights, StateDict textEncoderWeights,
                            boolean openClipTextEncoder, Optional<Path> configFolder, List<String> notes) {
    public ResolvedModel {
        notes = List.copyOf(notes);
    }

    /** The tokenizer prompts are read with: the tokenizer folder's vocabulary, with the resolved special tokens and length. */
    public dev.perfusion.text.ClipTokenizer tokenizer() throws java.io.IOException {
        return dev.perfusion.text.ClipTokenizer.load(requireTokenizerDir(), tokenizerConfig);
    }

    /** The tokenizer folder, or the error a caller that needs one reports, saying where it was looked for. */
    public Path requireTokenizerDir() {
        return tokenizerDir.orElseThrow(() -> new ModelInputException(source + ": " + noTokenizer()
                + "; give a tokenizer folder holding vocab.json and merges.txt", ModelInputException.Input.TOKENIZER_FOLDER));
    }

    private String noTokenizer() {
        if (layout == CheckpointLayout.SINGLE_FILE) return "single-file checkpoints carry no tokenizer";
        Path own = source.resolve("tokenizer");
        if (!Files.isDirectory(own)) return "the model folder has no tokenizer/ folder (not every copy of a model ships it)";
        List<String> missing = Stream.of("vocab.json", "merges.txt").filter(f -> !Files.isRegularFile(own.resolve(f))).toList();
        return "the model folder's tokenizer/ lacks " + String.join(" and ", missing);
    }
}
