package dev.perfusion.perfusion;

import dev.perfusion.io.Safetensors;
import dev.perfusion.tensor.NonFiniteException;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A learned concept as stored on disk: only what the method needs (paper §3.5) — the word embedding v*, the
 * target input i*, and the edit of the cross-attention projections (for Perfusion one locked key target o*_K and
 * one learned value target o*_V per layer) — with metadata tying it to the base model and text encoder it was made
 * for. Safetensors, written atomically.
 *
 * @param edit     how the concept changes each cross-attention layer's K and V projections
 * @param beta     the gate threshold to generate with when the user gives none
 * @param tau      the gate temperature to generate with when the user gives none
 * @param settings training settings (free-form, shown by {@code inspect})
 */
public record ConceptFile(String word, String supercategory, Tensor embedding, Tensor iStar, ProjectionEdit edit,
                          double beta, double tau, String baseModelHash, String textEncoderHash, Map<String, String> settings) {
    public static final String FORMAT = "perfusion-concept";
    public static final int VERSION = 1;
    /** The setting that says where the C^-1 a concept was trained with came from. */
    public static final String COVARIANCE_SETTING = "covariance";
    /** The setting that records the text encoder layer the concept was trained on (absent in older files: the last). */
    public static final String CLIP_SKIP_SETTING = "clip_skip";

    public ConceptFile {
        settings = Map.copyOf(settings);
    }

    public int layerCount() { return edit.layerCount(); }

    /** True for a concept that is a word embedding only (textual inversion), with no edit of the UNet. */
    public boolean embeddingOnly() { return edit.kind() == ProjectionEdit.Kind.NONE; }

    public long textDim() { return Ops.shape(embedding)[0]; }

    /** Output width of each edited layer. */
    public long[] layerDims() {
        long[] dims = new long[layerCount()];
        for (int l = 0; l < dims.length; l++) dims[l] = Ops.shape(edit.keys().get(l))[0];
        return dims;
    }

    /** The same concept with another target input (training moves i*). */
    public ConceptFile withIStar(Tensor iStar) {
        return new ConceptFile(word, supercategory, embedding, iStar, edit, beta, tau, baseModelHash, textEncoderHash, settings);
    }

    /** The tensors under their names in the file (see {@link ProjectionEdit#meaning}); the tensors themselves. */
    public Map<String, Tensor> tensors() {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        tensors.put("embedding", embedding);
        tensors.put("i_star", iStar);
        for (int l = 0; l < layerCount(); l++) {
            tensors.put(edit.tensorName(l, GatedRankOneProjection.Role.KEY), edit.keys().get(l));
            tensors.put(edit.tensorName(l, GatedRankOneProjection.Role.VALUE), edit.values().get(l));
        }
        return tensors;
    }

    /**
     * Frees a loaded concept's tensors now, not at the garbage collector's next pass, which their small Java objects
     * seldom wake (a K/V fine-tune's are tens of MB on SD): for a server job's concepts, not used after.
     */
    public void release() {
        Scope.releaseEach(tensors().values());
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
        meta.put("edit", edit.kind().id);
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
        try (PointerScope reading = new PointerScope()) { // a refused file's tensors are freed with it, not left to the GC
            ConceptFile concept = read(file, st);
            concept.tensors().values().forEach(Scope::keep);
            return concept;
        }
    }

    private static ConceptFile read(Path file, Safetensors st) throws IOException {
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
        if (layers < 0) throw new IOException(file + ": metadata 'layers' is " + layers + "; a concept edits 0 or more layers");
        Tensor embedding = tensor(st, "embedding", 1);
        Tensor iStar = tensor(st, "i_star", 1);
        if (Ops.shape(iStar)[0] != Ops.shape(embedding)[0]) {
            throw new IOException(file + ": i_star has " + Ops.shape(iStar)[0] + " dims but the embedding " + Ops.shape(embedding)[0]);
        }
        Map<String, String> settings = new LinkedHashMap<>();
        meta.forEach((k, v) -> { if (k.startsWith("training.")) settings.put(k.substring("training.".length()), v); });
        ProjectionEdit.Kind kind = editKind(meta, layers, settings, file);
        List<Tensor> keys = new ArrayList<>(), values = new ArrayList<>();
        for (int l = 0; l < layers; l++) {
            String keyName = kind.tensorName(l, GatedRankOneProjection.Role.KEY), valueName = kind.tensorName(l, GatedRankOneProjection.Role.VALUE);
            Tensor k = tensor(st, keyName, kind.tensorRank), v = tensor(st, valueName, kind.tensorRank);
            if (!java.util.Arrays.equals(Ops.shape(k), Ops.shape(v))) {
                throw new IOException(file + ": '" + keyName + "' has shape " + Ops.shapeString(k) + " but '" + valueName + "' " + Ops.shapeString(v));
            }
            if (kind == ProjectionEdit.Kind.WEIGHTS && Ops.shape(k)[1] != Ops.shape(embedding)[0]) {
                throw new IOException(file + ": '" + keyName + "' takes " + Ops.shape(k)[1] + "-dim inputs but the embedding has " + Ops.shape(embedding)[0] + " dims");
            }
            keys.add(k);
            values.add(v);
        }
        ConceptFile concept;
        try {
            concept = new ConceptFile(require(meta, "word", file), require(meta, "supercategory", file), embedding, iStar,
                    new ProjectionEdit(kind, keys, values), Double.parseDouble(require(meta, "default_beta", file)),
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

    /** A concept of the model's shapes made for another UNet or text encoder: usable only when the caller forces it. */
    public static final class MadeForAnotherModel extends IllegalArgumentException {
        MadeForAnotherModel(String message) { super(message); }
    }

    /**
     * Checks this concept fits a model: shapes must match always ({@link #checkShapes}); a different text encoder or
     * base model ({@link #checkMadeFor}) is an error unless {@code force} (the shapes then still decide whether it can
     * run at all).
     */
    public void checkFits(Path file, String modelHash, String modelTextEncoderHash, int modelClipSkip, long modelTextDim, long[] modelLayerDims,
                          boolean force) {
        checkShapes(file, modelTextDim, modelLayerDims);
        if (!force) checkMadeFor(file, modelHash, modelTextEncoderHash, modelClipSkip);
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
    public void checkMadeFor(Path file, String modelHash, String modelTextEncoderHash, int modelClipSkip) {
        if (!textEncoderHash.equals(modelTextEncoderHash)) {
            throw new MadeForAnotherModel(file + ": concept '" + word + "' was made for another text encoder ("
                    + textEncoderHash + ", this model has " + modelTextEncoderHash + ")");
        }
        if (!baseModelHash.equals(modelHash)) {
            throw new MadeForAnotherModel(file + ": concept '" + word + "' was made for another base model ("
                    + baseModelHash + ", this model is " + modelHash + ")");
        }
        if (clipSkip() != modelClipSkip) {
            // its i* and targets are encodings of another layer: the gate would compare unlike things
            throw new MadeForAnotherModel(file + ": concept '" + word + "' was trained on the text encoder with clip skip " + clipSkip()
                    + ", this run uses " + modelClipSkip + "; use it with clip skip " + clipSkip());
        }
    }

    /** The text encoder layers from the end the concept's encodings skipped ({@code --clip-skip}; 0: the last layer's). */
    public int clipSkip() {
        try {
            return Integer.parseInt(settings.getOrDefault(CLIP_SKIP_SETTING, "0"));
        } catch (NumberFormatException e) {
            return -1; // fits no run: refused as made for another clip skip
        }
    }

    /**
     * The edit's kind from the metadata. Files written before it was recorded said it only through the layer count
     * and the training method: no layers, or the ungated ROME ablation, or Perfusion's gated edit.
     */
    private static ProjectionEdit.Kind editKind(Map<String, String> meta, int layers, Map<String, String> settings, Path file) throws IOException {
        ProjectionEdit.Kind kind;
        if (meta.containsKey("edit")) {
            try {
                kind = ProjectionEdit.Kind.of(meta.get("edit"));
            } catch (IllegalArgumentException e) {
                throw new IOException(file + ": metadata 'edit': " + e.getMessage());
            }
        } else {
            kind = layers == 0 ? ProjectionEdit.Kind.NONE
                    : "ungated-rome".equals(settings.get("method")) ? ProjectionEdit.Kind.RANK_ONE : ProjectionEdit.Kind.GATED_RANK_ONE;
        }
        if ((kind == ProjectionEdit.Kind.NONE) != (layers == 0)) {
            throw new IOException(file + ": metadata says edit '" + kind.id + "' over " + layers + " layers");
        }
        return kind;
    }

    private static String require(Map<String, String> meta, String key, Path file) throws IOException {
        String v = meta.get(key);
        if (v == null) throw new IOException(file + ": concept file metadata lacks '" + key + "'");
        return v;
    }

    private static Tensor tensor(Safetensors st, String name, int rank) throws IOException {
        if (!st.keys().contains(name)) throw new IOException(st.file() + ": concept file lacks tensor '" + name + "'");
        if (st.shape(name).length != rank) {
            throw new IOException(st.file() + ": tensor '" + name + "' should be " + (rank == 1 ? "a vector" : "a matrix")
                    + ", has shape " + java.util.Arrays.toString(st.shape(name)));
        }
        return st.get(name);
    }
}
