package dev.perfusion.perfusion;

import dev.perfusion.pipeline.PromptEncoder;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.text.ClipTextModel;
import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.unet.Attention;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * One or more learned concepts installed in a model for generation: their words become tokens whose input
 * embedding is v*, and every cross-attention K and V becomes a {@link GatedRankOneProjection} over one shared
 * {@link ConceptGate}. The unconditional branch goes through the same edited layers. {@link #close} restores
 * the model.
 */
public final class AppliedConcepts implements PromptEncoder, AutoCloseable {
    /** A concept with the gate settings to generate it with. */
    public record Use(ConceptFile concept, double beta, double tau) {
        public Use {
            if (!(beta > -1 && beta < 2)) throw new IllegalArgumentException("--beta must be in (-1, 2), got " + beta);
            if (!(tau > 0 && tau <= 1)) throw new IllegalArgumentException("--tau must be in (0, 1], got " + tau);
        }
    }

    private final StableDiffusion sd;
    private final List<Use> uses;
    private final ClipTokenizer tokenizer;
    private final long[] placeholderIds;
    private final long[] supercategoryIds;
    private final ConceptGate gate;
    private final List<Attention> layers;
    private final boolean globalLock;

    private AppliedConcepts(StableDiffusion sd, Tensor cInv, List<Use> uses, ConceptGate.Orthogonalization orthogonalization,
                            boolean globalLock) {
        this.sd = sd;
        this.uses = List.copyOf(uses);
        this.globalLock = globalLock;
        List<String> words = new ArrayList<>();
        for (Use u : uses) {
            if (words.contains(u.concept().word())) {
                throw new IllegalArgumentException("two concepts use the word '" + u.concept().word() + "'; train them under different words");
            }
            words.add(u.concept().word());
        }
        this.tokenizer = sd.tokenizer.withAddedTokens(words);
        this.placeholderIds = new long[uses.size()];
        this.supercategoryIds = new long[uses.size()];
        List<Concept> gated = new ArrayList<>();
        List<Use> edits = new ArrayList<>();
        for (int j = 0; j < uses.size(); j++) {
            ConceptFile c = uses.get(j).concept();
            placeholderIds[j] = tokenizer.tokenId(c.word()).orElseThrow();
            supercategoryIds[j] = singleToken(sd.tokenizer, c.supercategory());
            if (c.embeddingOnly()) continue; // textual inversion: the word's embedding is all there is
            gated.add(new Concept(c.iStar(), uses.get(j).beta(), uses.get(j).tau()));
            edits.add(uses.get(j));
        }
        this.layers = sd.unet.crossAttentionLayers();
        if (edits.isEmpty()) {
            this.gate = null;
            return;
        }
        boolean ungated = edits.stream().anyMatch(u -> u.concept().ungated());
        if (ungated && edits.stream().anyMatch(u -> !u.concept().ungated())) {
            throw new IllegalArgumentException("an ungated (ROME) concept cannot be combined with gated ones");
        }
        this.gate = new ConceptGate(cInv, gated, orthogonalization);
        if (ungated) gate.setGating(ConceptGate.Gating.LINEAR_ROME);
        for (int l = 0; l < layers.size(); l++) {
            List<Tensor> keys = new ArrayList<>(), values = new ArrayList<>();
            for (Use u : edits) {
                keys.add(u.concept().keyTargets().get(l));
                values.add(u.concept().valueTargets().get(l));
            }
            Attention a = layers.get(l);
            a.setKey(new GatedRankOneProjection(a.originalKey(), gate, GatedRankOneProjection.Role.KEY, keys));
            a.setValue(new GatedRankOneProjection(a.originalValue(), gate, GatedRankOneProjection.Role.VALUE, values));
        }
    }

    /**
     * Installs {@code uses} in {@code sd}. Every concept must fit the model (shapes always; hashes unless
     * {@code force}) and all must share the text encoder whose input covariance {@code cInv} is.
     */
    public static AppliedConcepts apply(StableDiffusion sd, Tensor cInv, List<Use> uses,
                                        ConceptGate.Orthogonalization orthogonalization, boolean globalLock) {
        if (uses.isEmpty()) throw new IllegalArgumentException("no concept given");
        String encoder = uses.get(0).concept().textEncoderHash();
        for (Use u : uses) {
            if (!u.concept().textEncoderHash().equals(encoder)) {
                throw new IllegalArgumentException("concepts '" + uses.get(0).concept().word() + "' and '" + u.concept().word()
                        + "' were made for different text encoders and cannot be combined (they need one shared covariance)");
            }
        }
        return new AppliedConcepts(sd, cInv, uses, orthogonalization, globalLock);
    }

    /** The id of a word that must be one token (a supercategory), or a clear error suggesting what to do. */
    public static long singleToken(ClipTokenizer tokenizer, String word) {
        List<String> tokens = tokenizer.tokensOf(word);
        if (tokens.size() != 1) {
            throw new IllegalArgumentException("the supercategory '" + word + "' is not a single token of this model's "
                    + "vocabulary: it becomes " + tokens + "; choose a common one-word noun (e.g. '"
                    + tokens.get(0).replace("</w>", "") + "' or a simpler synonym)");
        }
        return tokenizer.tokenId(tokens.get(0)).orElseThrow();
    }

    public ClipTokenizer tokenizer() { return tokenizer; }

    /** The gate of the edited concepts; null when every concept is embedding-only. */
    public ConceptGate gate() { return gate; }

    /**
     * Encodes prompts with each concept's word embedded as v*. With global key locking the K projections also
     * receive the prompts with each word replaced by its supercategory.
     */
    @Override
    public Tensor encode(List<String> prompts, Consumer<String> warnings) {
        Tensor ids = sd.tokenize(tokenizer, prompts, warnings);
        Tensor encodings = encodeIds(ids);
        if (globalLock && gate != null) {
            Tensor superIds = ids;
            for (int j = 0; j < uses.size(); j++) superIds = replaceIds(superIds, placeholderIds[j], supercategoryIds[j]);
            gate.lockKeys(encodings, sd.textEncoder.encode(superIds, sd.clipSkip()));
        }
        return encodings;
    }

    /** Text encodings of token ids that may contain concept words. */
    Tensor encodeIds(Tensor ids) {
        Tensor safe = ids;
        for (int j = 0; j < uses.size(); j++) safe = replaceIds(safe, placeholderIds[j], supercategoryIds[j]);
        Tensor embeds = sd.textEncoder.tokenEmbeddings(safe);
        for (int j = 0; j < uses.size(); j++) {
            embeds = ClipTextModel.replaceToken(embeds, ids, placeholderIds[j], uses.get(j).concept().embedding());
        }
        return sd.textEncoder.encodeEmbeddings(embeds, sd.clipSkip());
    }

    static Tensor replaceIds(Tensor ids, long from, long to) {
        return torch.where(ids.eq(new org.bytedeco.pytorch.Scalar(from)), Ops.fromLongs(new long[] {to}).to(ids.device(), torch.ScalarType.Long), ids);
    }

    /** Puts the original K/V projections back. */
    @Override
    public void close() {
        if (gate == null) return; // embedding-only concepts installed nothing
        for (Attention a : layers) {
            a.setKey(null);
            a.setValue(null);
        }
        gate.clearCache();
    }

    /** Layer widths of a model's cross-attention, for {@link ConceptFile#checkFits}. */
    public static long[] layerDims(StableDiffusion sd) {
        return sd.unet.crossAttentionLayers().stream().mapToLong(Attention::innerDim).toArray();
    }

}
