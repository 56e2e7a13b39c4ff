package dev.perfusion.text;

import dev.perfusion.io.Safetensors;
import dev.perfusion.nn.Embedding;
import dev.perfusion.nn.Module;
import dev.perfusion.nn.Weights;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/**
 * transformers' {@code CLIPTextModel} (v4.31): the Stable Diffusion text encoder. Parameters carry transformers'
 * state-dict names ({@code text_model.encoder.layers.0.self_attn.q_proj.weight}, ...), so a diffusers
 * {@code text_encoder/model.safetensors} loads with {@code Weights.load(model, file, "", ...)} and the text encoder
 * of an original single-file checkpoint with prefix {@code "cond_stage_model.transformer."}. A checkpoint's
 * {@code text_model.embeddings.position_ids} buffer is not a parameter and is ignored.
 *
 * <p>{@code encode(ids) == encodeEmbeddings(tokenEmbeddings(ids))}: between the two, a caller may replace rows of
 * the token embeddings (a learned word vector, {@link #replaceToken}); every operation is out of place, so
 * gradients flow from the output back to such a vector through the frozen encoder. For inference, call under
 * {@code Scope.inference()}.
 */
public final class ClipTextModel extends Module {
    private final ClipTextConfig config;
    private final ClipTextTransformer textModel;

    private ClipTextModel(ClipTextConfig config) {
        this.config = config;
        this.textModel = child("text_model", new ClipTextTransformer(config));
        namedParameters(); // gives every parameter its full name for "never loaded" errors
    }

    /** The module tree with its parameter shapes; no weights until {@code Weights.load} or {@code Weights.initRandom}. */
    public static ClipTextModel create(ClipTextConfig config) {
        return new ClipTextModel(config);
    }

    /** Builds from a diffusers {@code text_encoder} folder: {@code config.json} and {@code model.safetensors}. */
    public static ClipTextModel load(Path folder, Device device, torch.ScalarType dtype) throws IOException {
        ClipTextModel model = create(ClipTextConfig.load(folder.resolve("config.json")));
        Path weights = folder.resolve("model.safetensors");
        if (!Files.isRegularFile(weights)) {
            List<String> present;
            try (Stream<Path> files = Files.list(folder)) {
                present = files.map(p -> p.getFileName().toString()).sorted().toList();
            }
            throw new IOException("no text encoder weights at " + weights + " (only safetensors is supported; the folder holds "
                    + present + ")");
        }
        Weights.load(model, Safetensors.open(weights), "", device, dtype, "text encoder");
        return model;
    }

    public ClipTextConfig config() { return config; }

    /** {@code text_model}: embeddings, encoder layers, final layer norm. */
    public ClipTextTransformer textModel() { return textModel; }

    /** The [vocab, hidden] token table. */
    public Embedding tokenEmbedding() { return textModel.embeddings.tokenEmbedding; }

    /** last_hidden_state: [B, L] int64 ids (L <= max_position_embeddings, 77 for SD) -> [B, L, hidden]. */
    public Tensor encode(Tensor ids) {
        return encode(ids, 0);
    }

    /**
     * Clip skip: final_layer_norm of the output of encoder layer {@code N - skipLastLayers}, i.e. diffusers'
     * {@code clip_skip=skipLastLayers} ({@code hidden_states[-(clip_skip + 1)]}). 0 = the last layer, as by default.
     */
    public Tensor encode(Tensor ids, int skipLastLayers) {
        return encodeEmbeddings(tokenEmbeddings(ids), skipLastLayers);
    }

    /** The token table's rows for {@code ids}: [B, L] -> [B, L, hidden], before positions are added. */
    public Tensor tokenEmbeddings(Tensor ids) {
        return textModel.embeddings.tokens(ids);
    }

    /** Adds position embeddings to [B, L, hidden] token embeddings and runs the transformer: last_hidden_state. */
    public Tensor encodeEmbeddings(Tensor tokenEmbeds) {
        return encodeEmbeddings(tokenEmbeds, 0);
    }

    /** {@link #encodeEmbeddings(Tensor)} with clip skip, as in {@link #encode(Tensor, int)}. */
    public Tensor encodeEmbeddings(Tensor tokenEmbeds, int skipLastLayers) {
        return textModel.forward(tokenEmbeds, skipLastLayers);
    }

    /** The {@code num_hidden_layers + 1} un-normalised hidden states (embeddings, then each layer), as transformers returns them. */
    public List<Tensor> hiddenStates(Tensor tokenEmbeds) {
        return textModel.hiddenStates(tokenEmbeds);
    }

    /**
     * Token embeddings with every position whose id is {@code tokenId} replaced by {@code vector} [hidden]; out of
     * place, so a vector that requires grad receives the gradient of those positions.
     */
    public static Tensor replaceToken(Tensor tokenEmbeds, Tensor ids, long tokenId, Tensor vector) {
        if (vector.dim() != 1 || Ops.shape(vector)[0] != Ops.shape(tokenEmbeds)[2]) {
            throw new IllegalArgumentException("replacement vector must be [" + Ops.shape(tokenEmbeds)[2] + "], got "
                    + Ops.shapeString(vector));
        }
        Tensor where = ids.eq(new Scalar(tokenId)).unsqueeze(-1);
        return torch.where(where, vector.to(tokenEmbeds.device(), tokenEmbeds.scalar_type()), tokenEmbeds);
    }
}
