package dev.perfusion.perfusion;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * What a concept file says about itself, without its tensors: what {@code inspect} prints and the web app's
 * library shows.
 *
 * @param storedFloats the floats of the embedding, i* and one key and one value target per layer
 * @param training the training settings recorded in the file, sorted by name
 */
public record ConceptSummary(String file, long bytes, String word, String supercategory, double beta, double tau, String edit,
                             String baseModelHash, String textEncoderHash, long textDim, int layers, List<Long> layerWidths,
                             long storedFloats, Map<String, String> training) {
    public ConceptSummary {
        layerWidths = List.copyOf(layerWidths);
        training = java.util.Collections.unmodifiableMap(new TreeMap<>(training));
    }

    /** The summary of {@code concept}, read from {@code file}. */
    public static ConceptSummary of(Path file, ConceptFile concept) throws IOException {
        long[] dims = concept.layerDims();
        long floats = 2 * concept.textDim() + 2 * Arrays.stream(dims).sum();
        return new ConceptSummary(file.getFileName().toString(), Files.size(file), concept.word(), concept.supercategory(),
                concept.beta(), concept.tau(), concept.edit().kind().id, concept.baseModelHash(), concept.textEncoderHash(),
                concept.textDim(), concept.layerCount(), Arrays.stream(dims).boxed().toList(), floats, concept.settings());
    }
}
