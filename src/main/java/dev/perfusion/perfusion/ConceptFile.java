package dev.perfusion.perfusion;

import dev.perfusion.io.Safetensors;
import dev.perfusion.tensor.NonFiniteException;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A learned concept as stored on disk: only what the method needs (paper §3.5) — the word embedding v*, the
 * target input i*, and per cross-attention layer one locked key target o*_K and one learned value target o*_V —
 * with metadata tying it to the base model and text encoder it was made for. Safetensors, written atomically.
 *
 * @param keyTargets   o*_K per cross-attention layer, in the UNet's cross-attention order
 * @param valueTargets o*_V per layer, same order
 * @param settings     training settings (free-form, shown by {@code inspect})
 */
public record ConceptFile(String word, String supercategory, Tensor embedding, Tensor iStar,
                          List<Tensor> keyTargets, List<Tensor> valueTargets, double beta, double tau,
                          String baseModelHash, String textEncoderHash, Map<String, String> settings) {
    public static final String FORMAT = "perfusion-concept";
    public static final int VERSION = 1;

    public ConceptFile {
        // no layers: an embedding-only concept (the textual-inversion baseline)
        if (keyTargets.size() != valueTargets.size()) {
            throw new IllegalArgumentException(keyTargets.size() + " key targets but " + valueTargets.size() + " value targets");
        }
        keyTargets = List.copyOf(keyTargets);
        valueTargets = List.copyOf(valueTargets);
        settings = Map.copyOf(settings);
    }

    public int layerCount() { return keyTargets.size(); }

    /** True for a concept that is a word embedding only (textual inversion), with no edit of the UNet. */
    public boolean embeddingOnly() { return keyTargets.isEmpty(); }

    /** Whether it was trained (and must be used) with the ungated, linear ROME edit. */
    public boolean ungated() { return PerfusionTrainer.Method.UNGATED_ROME.id.equals(settings.get("method")); }

    public long textDim() { return Ops.shape(embedding)[0]; }

    /** Output width of each edited layer. */
    public long[] layerDims() {
        long[] dims = new long[layerCount()];
        for (int l = 0; l < dims.length; l++) dims[l] = Ops.shape(keyTargets.get(l))[0];
        return dims;
    }

    /** The tensors under their names in the file. */
    private Map<String, Tensor> tensors() {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        tensors.put("embedding", embedding);
        tensors.put("i_star", iStar);
        for (int l = 0; l < layerCount(); l++) {
            tensors.put("layers." + l + ".key_target", keyTargets.get(l));
            tensors.put("layers." + l + ".value_target", valueTargets.get(l));
        }
        return tensors;
    }

    /** The first tensor holding a NaN or an infinity (a concept that can only draw black pictures), or null. */
    private String firstNonFinite() {
        for (Map.Entry<String, Tensor> e : tensors().entrySet()) {
            if (!Ops.allFinite(e.getValue())) return e.getKey();
        }
        return null;
    }

    /** Writes the concept atomically; a concept with a NaN or an infinity in any tensor is refused, not written. */
    public void save(Path file) throws IOException {
        String broken = firstNonFinite();
        if (broken != null) {
            throw new NonFiniteException("concept '" + word + "' was not written to " + file + ": its tensor '" + broken
                    + "' holds NaN or infinite values");
        }
        Map<String, Tensor> tensors = tensors();
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", FORMAT);
        meta.put("format_version", Integer.toString(VERSION));
        meta.put("word", word);
        meta.put("supercategory", supercategory);
        meta.put("base_model_hash", baseModelHash);
        meta.put("text_encoder_hash", textEncoderHash);
        meta.put("default_beta", Double.toString(beta));
        meta.put("default_tau", Double.toString(tau));
        meta.put("layers", Integer.toString(layerCount()));
        settings.forEach((k, v) -> meta.put("training." + k, v));
        Safetensors.write(file, tensors, meta, Safetensors.StoredType.F32);
    }

    public static ConceptFile load(Path file) throws IOException {
        Safetensors st;
        try {
            st = Safetensors.open(file);
        } catch (IOException e) {
            throw new IOException("not a readable concept file: " + e.getMessage(), e);
        }
        Map<String, String> meta = st.metadata();
        if (!FORMAT.equals(meta.get("format"))) {
            throw new IOException(file + ": not a Perfusion concept file (metadata format is "
                    + (meta.containsKey("format") ? "'" + meta.get("format") + "'" : "absent") + ", expected '" + FORMAT + "')");
        }
        int version;
        try {
            version = Integer.parseInt(require(meta, "format_version", file));
        } catch (NumberFormatException e) {
            throw new IOException(file + ": metadata 'format_version' is not a number: '" + meta.get("format_version") + "'");
        }
        if (version > VERSION) {
            throw new IOException(file + ": concept format version " + version + " is newer than this program reads (" + VERSION + ")");
        }
        int layers;
        try {
            layers = Integer.parseInt(require(meta, "layers", file));
        } catch (NumberFormatException e) {
            throw new IOException(file + ": metadata 'layers' is not a number");
        }
        Tensor embedding = tensor(st, "embedding", 1);
        Tensor iStar = tensor(st, "i_star", 1);
        if (Ops.shape(iStar)[0] != Ops.shape(embedding)[0]) {
            throw new IOException(file + ": i_star has " + Ops.shape(iStar)[0] + " dims but the embedding " + Ops.shape(embedding)[0]);
        }
        List<Tensor> keys = new ArrayList<>(), values = new ArrayList<>();
        for (int l = 0; l < layers; l++) {
            Tensor k = tensor(st, "layers." + l + ".key_target", 1), v = tensor(st, "layers." + l + ".value_target", 1);
            if (Ops.shape(k)[0] != Ops.shape(v)[0]) {
                throw new IOException(file + ": layer " + l + " key target has " + Ops.shape(k)[0] + " dims, value target " + Ops.shape(v)[0]);
            }
            keys.add(k);
            values.add(v);
        }
        Map<String, String> settings = new LinkedHashMap<>();
        meta.forEach((k, v) -> { if (k.startsWith("training.")) settings.put(k.substring("training.".length()), v); });
        ConceptFile concept;
        try {
            concept = new ConceptFile(require(meta, "word", file), require(meta, "supercategory", file), embedding, iStar,
                    keys, values, Double.parseDouble(require(meta, "default_beta", file)),
                    Double.parseDouble(require(meta, "default_tau", file)), require(meta, "base_model_hash", file),
                    require(meta, "text_encoder_hash", file), settings);
        } catch (NumberFormatException e) {
            throw new IOException(file + ": default_beta/default_tau metadata is not a number");
        }
        String broken = concept.firstNonFinite();
        if (broken != null) {
            throw new IOException(file + ": tensor '" + broken + "' holds NaN or infinite values; the concept is broken "
                    + "(train it again)");
        }
        return concept;
    }

    /**
     * Checks this concept fits a model: shapes must match always ({@link #checkShapes}); a different text encoder or
     * base model ({@link #checkMadeFor}) is an error unless {@code force} (the shapes then still decide whether it can
     * run at all).
     */
    public void checkFits(Path file, String modelHash, String modelTextEncoderHash, long modelTextDim, long[] modelLayerDims,
                          boolean force) {
        checkShapes(file, modelTextDim, modelLayerDims);
        if (!force) checkMadeFor(file, modelHash, modelTextEncoderHash);
    }

    /** The text encoding width and cross-attention widths must be the model's: otherwise it cannot run at all. */
    public void checkShapes(Path file, long modelTextDim, long[] modelLayerDims) {
        if (modelTextDim != textDim() || (!embeddingOnly() && !java.util.Arrays.equals(modelLayerDims, layerDims()))) {
            throw new IllegalArgumentException(file + ": concept '" + word + "' was made for a model with " + textDim()
                    + "-dim text encodings and cross-attention widths " + java.util.Arrays.toString(layerDims())
                    + "; this model has " + modelTextDim + " and " + java.util.Arrays.toString(modelLayerDims));
        }
    }

    /**
     * The concept must have been made for this text encoder and base model (by their hashes); one of the same shapes
     * made for another runs, but its results may be poor, so using it is the caller's explicit choice.
     */
    public void checkMadeFor(Path file, String modelHash, String modelTextEncoderHash) {
        if (!textEncoderHash.equals(modelTextEncoderHash)) {
            throw new IllegalArgumentException(file + ": concept '" + word + "' was made for another text encoder ("
                    + textEncoderHash + ", this model has " + modelTextEncoderHash + ")");
        }
        if (!baseModelHash.equals(modelHash)) {
            throw new IllegalArgumentException(file + ": concept '" + word + "' was made for another base model ("
                    + baseModelHash + ", this model is " + modelHash + ")");
        }
    }

    private static String require(Map<String, String> meta, String key, Path file) throws IOException {
        String v = meta.get(key);
        if (v == null) throw new IOException(file + ": concept file metadata lacks '" + key + "'");
        return v;
    }

    private static Tensor tensor(Safetensors st, String name, int rank) throws IOException {
        if (!st.keys().contains(name)) throw new IOException(st.file() + ": concept file lacks tensor '" + name + "'");
        if (st.shape(name).length != rank) {
            throw new IOException(st.file() + ": tensor '" + name + "' should be a vector, has shape " + java.util.Arrays.toString(st.shape(name)));
        }
        return dev.perfusion.tensor.Scope.keep(st.get(name));
    }
}
