package dev.perfusion.perfusion;

import dev.perfusion.pipeline.DistinctPrompts;
import dev.perfusion.pipeline.PromptEncoder;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.text.ClipTextModel;
import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.unet.Attention;
import dev.perfusion.unet.UNet2DConditionModel;
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
    /** A concept with the gate settings to generate it with (checked by {@link Concept}'s rules). */
    public record Use(ConceptFile concept, double beta, double tau) {
        public Use {
            Concept.checkBeta(beta);
            Concept.checkTau(tau);
        }
    }

    private final StableDiffusion sd;
    private final List<Use> uses;
    private final ClipTokenizer tokenizer;
    private final long[] placeholderIds;
    private final long[] supercategoryIds;
    private final ConceptGate gate;
    private final List<Attention> layers;
    /** Whether any layer was changed (not for embedding-only concepts). */
    private final boolean edited;
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
        List<Use> edits = new ArrayList<>();
        for (int j = 0; j < uses.size(); j++) {
            ConceptFile c = uses.get(j).concept();
            placeholderIds[j] = tokenizer.tokenId(c.word()).orElseThrow();
            supercategoryIds[j] = singleToken(sd.tokenizer, c.supercategory());
            if (!c.embeddingOnly()) edits.add(uses.get(j)); // textual inversion: the word's embedding is all there is
        }
        this.layers = sd.unet.crossAttentionLayers();
        this.edited = !edits.isEmpty();
        try {
            this.gate = edited ? install(edits, cInv, orthogonalization) : null;
        } catch (RuntimeException e) {
            restoreOriginalProjections(); // a concept that does not fit leaves no layer half-edited
            throw e;
        }
    }

    /** Puts the concepts' edits into every cross-attention layer; returns their shared gate (none for replaced weights). */
    private ConceptGate install(List<Use> edits, Tensor cInv, ConceptGate.Orthogonalization orthogonalization) {
        ProjectionEdit.Kind kind = edits.get(0).concept().edit().kind();
        for (Use u : edits) {
            if (u.concept().edit().kind() != kind) {
                throw new IllegalArgumentException("concept '" + u.concept().word() + "' (a " + u.concept().edit().kind().id
                        + " edit) cannot be combined with '" + edits.get(0).concept().word() + "' (a " + kind.id + " edit)");
            }
        }
        if (kind == ProjectionEdit.Kind.WEIGHTS) {
            if (edits.size() > 1) {
                throw new IllegalArgumentException("concepts '" + edits.get(0).concept().word() + "' and '" + edits.get(1).concept().word()
                        + "' each replace whole K/V weights and cannot be combined");
            }
            ProjectionEdit edit = edits.get(0).concept().edit();
            for (int l = 0; l < layers.size(); l++) {
                Attention a = layers.get(l);
                a.setKey(new FineTunedProjection(a.originalKey(), edit.keys().get(l)));
                a.setValue(new FineTunedProjection(a.originalValue(), edit.values().get(l)));
            }
            return null;
        }
        List<Concept> gated = new ArrayList<>();
        for (Use u : edits) gated.add(new Concept(u.concept().iStar(), u.beta(), u.tau()));
        ConceptGate shared = new ConceptGate(cInv, gated, orthogonalization);
        if (kind == ProjectionEdit.Kind.RANK_ONE) shared.setGating(ConceptGate.Gating.LINEAR_ROME);
        for (int l = 0; l < layers.size(); l++) {
            List<Tensor> keys = new ArrayList<>(), values = new ArrayList<>();
            for (Use u : edits) {
                keys.add(u.concept().edit().keys().get(l));
                values.add(u.concept().edit().values().get(l));
            }
            Attention a = layers.get(l);
            a.setKey(new GatedRankOneProjection(a.originalKey(), shared, GatedRankOneProjection.Role.KEY, keys));
            a.setValue(new GatedRankOneProjection(a.originalValue(), shared, GatedRankOneProjection.Role.VALUE, values));
        }
        return shared;
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
            List<String> near = singleTokenWordsNear(tokenizer, word);
            throw new IllegalArgumentException("the supercategory '" + word + "' is not a single token of this model's "
                    + "vocabulary: it becomes " + tokens + "; choose a common one-word noun that is a single token"
                    + (near.isEmpty() ? ", a simpler synonym (no single-token word of the vocabulary is spelled like it)"
                       : ", e.g. " + orList(near.stream().map(w -> "'" + w + "'").toList()) + ", or a simpler synonym"));
        }
        return tokenizer.tokenId(tokens.get(0)).orElseThrow();
    }

    private static String orList(List<String> items) {
        if (items.size() == 1) return items.get(0);
        return String.join(", ", items.subList(0, items.size() - 1)) + " or " + items.get(items.size() - 1);
    }

    /**
     * Up to three whole words of the vocabulary (letters only, one token each) spelled like {@code text}: its own
     * words, words it begins with ("doggo": dog), words it ends with after another such word ("teddybear": bear),
     * and words sharing its first four or more letters ("doggie": doggy); longest overlap first. Empty when none is
     * close.
     */
    static List<String> singleTokenWordsNear(ClipTokenizer tokenizer, String text) {
        String given = text.toLowerCase(java.util.Locale.ROOT).trim();
        List<String> words = List.of(given.split("[^a-z]+"));
        // words it is made of come first, then words that only begin like it
        record Candidate(String word, boolean part, int overlap) {}
        List<Candidate> found = new ArrayList<>();
        for (String token : tokenizer.vocab().keySet()) {
            if (!token.endsWith("</w>")) continue;
            String w = token.substring(0, token.length() - "</w>".length());
            if (w.length() < 3 || !w.matches("[a-z]+") || w.equals(given)) continue;
            int shared = 0;
            while (shared < Math.min(w.length(), given.length()) && w.charAt(shared) == given.charAt(shared)) shared++;
            boolean compoundEnd = given.endsWith(w) && isWholeWord(tokenizer, given.substring(0, given.length() - w.length()));
            boolean part = words.contains(w) || given.startsWith(w) || compoundEnd;
            int overlap = part ? w.length() : shared >= Math.max(4, (given.length() + 1) / 2) ? shared : 0;
            if (overlap > 0 && tokenizer.tokensOf(w).equals(List.of(token))) found.add(new Candidate(w, part, overlap));
        }
        // a beginning inside a longer one ("ted" in "teddy") adds nothing
        List<String> parts = found.stream().filter(Candidate::part).map(Candidate::word).toList();
        return found.stream()
                .filter(c -> !c.part() || parts.stream().noneMatch(p -> p.length() > c.word().length() && p.startsWith(c.word())))
                .sorted(java.util.Comparator.comparing((Candidate c) -> !c.part())
                        .thenComparingInt(c -> -c.overlap())
                        .thenComparingInt(c -> Math.abs(c.word().length() - given.length()))
                        .thenComparing(Candidate::word))
                .limit(3).map(Candidate::word).toList();
    }

    private static boolean isWholeWord(ClipTokenizer tokenizer, String w) {
        return w.length() >= 3 && w.matches("[a-z]+") && tokenizer.tokenId(w + "</w>").isPresent();
    }

    public ClipTokenizer tokenizer() { return tokenizer; }

    @Override
    public ClipTokenizer tokenizer(StableDiffusion sd) { return tokenizer; }

    /**
     * The concepts whose word {@code prompt} does not hold (within the tokens the model reads): they have no effect
     * on it.
     */
    public List<ConceptFile> absentFrom(String prompt) {
        long[] ids = tokenizer.encodeForModel(prompt).ids();
        List<ConceptFile> absent = new ArrayList<>();
        for (int j = 0; j < uses.size(); j++) {
            long id = placeholderIds[j];
            if (java.util.Arrays.stream(ids).noneMatch(t -> t == id)) absent.add(uses.get(j).concept());
        }
        return absent;
    }

    /** The gate of the edited concepts; null when no concept has a gated or rank-one edit. */
    public ConceptGate gate() { return gate; }

    /**
     * Encodes prompts with each concept's word embedded as v*. With global key locking the K projections also
     * receive the prompts with each word replaced by its supercategory. The encodings come in the UNet's precision:
     * the gate knows a prompt batch by its tensor, so the locked keys must be registered on the very tensor the UNet
     * reads (registered on the fp32 encodings, a bf16 model's copy of them went unlocked).
     */
    @Override
    public Tensor encode(List<String> prompts, Consumer<String> warnings) {
        DistinctPrompts batch = DistinctPrompts.of(prompts);
        Tensor ids = sd.tokenize(tokenizer, batch.distinct(), warnings);
        Tensor encodings = batch.batchRows(encodeIds(ids).to(sd.dtype));
        if (globalLock && gate != null) gate.lockKeys(encodings, batch.batchRows(supercategoryEncodings(ids)));
        return encodings;
    }

    @Override
    public void drawn(Tensor encodings) {
        if (gate != null) gate.forget(encodings);
    }

    /** The base model's encodings of prompts (token ids) with each concept's word replaced by its supercategory. */
    private Tensor supercategoryEncodings(Tensor ids) {
        Tensor superIds = ids;
        for (int j = 0; j < uses.size(); j++) superIds = replaceIds(superIds, placeholderIds[j], supercategoryIds[j]);
        return sd.textEncoder.encode(superIds, sd.clipSkip()).to(sd.dtype);
    }

    /**
     * These concepts as a prompt encoder whose pictures leave their layout to the base model: the first
     * {@code conceptStart} of the denoising steps read each concept's supercategory word in its place, through the
     * model's own K and V, and the concepts draw themselves into that layout in the rest. How many objects a picture
     * holds, and where, is settled in its first steps, where a concept strong enough to carry its instance's details
     * is also drawn a second time (in up to a fifth of the bundled model's one-object pictures; README, "The layout
     * first"). 0 is the paper's: every step with the concepts ({@link AppliedConcepts} itself).
     */
    public PromptEncoder startingAt(double conceptStart) {
        return new LayoutFirst(this, Concept.checkConceptStart(conceptStart));
    }

    private record LayoutFirst(AppliedConcepts concepts, double conceptStart) implements PromptEncoder {
        @Override
        public Tensor encode(List<String> prompts, Consumer<String> warnings) { return concepts.encode(prompts, warnings); }

        @Override
        public void drawn(Tensor encodings) { concepts.drawn(encodings); }

        @Override
        public ClipTokenizer tokenizer(StableDiffusion sd) { return concepts.tokenizer; }

        @Override
        public EarlySteps earlySteps(List<String> prompts, int steps, Consumer<String> warnings) {
            int count = Math.min((int) Math.round(conceptStart * steps), steps - 1); // rounded up to every step, the concepts would draw nothing
            if (count <= 0) return null;
            DistinctPrompts batch = DistinctPrompts.of(prompts);
            return new LayoutSteps(count, batch.batchRows(concepts.supercategoryEncodings(concepts.sd.tokenize(concepts.tokenizer, batch.distinct(), warnings))));
        }
    }

    /** The first {@code count} steps: the model as loaded, reading the prompts with the supercategory words. */
    private record LayoutSteps(int count, Tensor supercategoryEncodings) implements PromptEncoder.EarlySteps {
        @Override
        public Tensor predict(UNet2DConditionModel unet, Tensor latents, Tensor timestep) {
            return Attention.withOriginalProjections(() -> unet.forward(latents, timestep, supercategoryEncodings));
        }
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
        if (!edited) return; // embedding-only concepts installed nothing
        restoreOriginalProjections();
        if (gate != null) gate.close();
    }

    private void restoreOriginalProjections() {
        for (Attention a : layers) {
            a.setKey(null);
            a.setValue(null);
        }
    }

    /** Layer widths of a model's cross-attention, for {@link ConceptFile#checkFits}. */
    public static long[] layerDims(StableDiffusion sd) {
        return sd.unet.crossAttentionLayers().stream().mapToLong(Attention::innerDim).toArray();
    }

}
