package dev.perfusion.eval;

import dev.perfusion.eval.AttributeClassifier.Attribute;
import dev.perfusion.io.AtomicFiles;
import dev.perfusion.io.Png;
import dev.perfusion.perfusion.AppliedConcepts;
import dev.perfusion.perfusion.Concept;
import dev.perfusion.perfusion.ConceptFile;
import dev.perfusion.perfusion.ConceptGate;
import dev.perfusion.pipeline.PromptEncoder;
import dev.perfusion.pipeline.SideSteering;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.pipeline.TextToImage;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.training.ConceptMethod;
import dev.perfusion.training.ConceptMethods;
import dev.perfusion.training.ConceptTrainer;
import dev.perfusion.training.TrainingSettings;
import dev.perfusion.util.Progress;
import dev.perfusion.util.Stopping;
import dev.perfusion.world.Instance;
import dev.perfusion.world.Placement;
import dev.perfusion.world.Prompts;
import dev.perfusion.world.Sample;
import dev.perfusion.world.Scene;
import dev.perfusion.world.SceneSpec;
import dev.perfusion.world.Size;
import dev.perfusion.world.WorldGenerator;
import org.bytedeco.pytorch.Tensor;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Function;

/**
 * The evaluation protocol of the method against its baselines on the bundled world. Each held-out instance is
 * learned from six pictures by every method with the same engine, pictures, steps and seed; each result is drawn
 * for every evaluation prompt and seed (Perfusion over a range of beta, locally and with global key locking) and
 * every picture is scored:
 * <ul>
 *   <li>fidelity: cosine similarity, under the instance encoder, between the concept's region of the picture (the
 *   side the prompt puts it on; the better side for "next to") and the mean of its training pictures;</li>
 *   <li>alignment: the fraction of what the prompt asks for that the attribute classifier finds: the scene, the
 *   placement (single objects), the supercategory present, the second object present;</li>
 *   <li>leakage (pair prompts): the same similarity measured on the other object's side;</li>
 *   <li>identified: the instance encoder picks the trained instance out of all the held-out ones;</li>
 *   <li>details: it picks the trained instance out of its own look-alikes, the same object without its accessory
 *   and with a plain body ({@link Instance#withoutEachDetail}): the picture shows what sets it apart (the teddy's
 *   bow), not only its kind and colour;</li>
 *   <li>CLIP-I and CLIP-T, the paper's scores, under the world's own CLIP ({@link WorldClip}): the picture's mean
 *   cosine to the training pictures, and its cosine to the prompt with the supercategory in place of the concept.</li>
 * </ul>
 * The base model with the supercategory word in place of the concept gives the floor of fidelity and the ceiling
 * of alignment. A second section combines pairs of separately trained concepts, exactly and approximately.
 */
public final class MethodEvaluation {
    /** What to run; {@link #quick()} is the CI-sized protocol. */
    public record Protocol(int instances, int prompts, int seeds, int trainingSteps, List<Double> betas, int samplingSteps,
                           double guidance, double conceptStart, double sideSteering, List<ConceptMethod> methods, boolean multiConcept,
                           Mask mask, Training conceptTraining) {
        public Protocol {
            if (betas.isEmpty()) throw new IllegalArgumentException("no beta to evaluate at");
            betas.forEach(Concept::checkBeta); // before any training, not when the first concept is drawn
            if (new java.util.HashSet<>(betas).size() < betas.size()) throw new IllegalArgumentException("a beta is named twice: " + betas);
            if (new java.util.HashSet<>(methods).size() < methods.size()) throw new IllegalArgumentException("a method is named twice");
            Concept.checkConceptStart(conceptStart);
            SideSteering.checkStrength(sideSteering);
            for (ConceptMethod m : methods) training(m, trainingSteps, mask, conceptTraining); // refuses what cannot train before any training
        }

        /**
         * Concepts drawn as {@code generate} draws them by default ({@link Concept#GENERATION_CONCEPT_START},
         * {@link SideSteering#DEFAULT_STRENGTH}), trained as the paper's.
         */
        public Protocol(int instances, int prompts, int seeds, int trainingSteps, List<Double> betas, int samplingSteps,
                        double guidance, List<ConceptMethod> methods, boolean multiConcept, Mask mask) {
            this(instances, prompts, seeds, trainingSteps, betas, samplingSteps, guidance, Concept.GENERATION_CONCEPT_START,
                    SideSteering.DEFAULT_STRENGTH, methods, multiConcept, mask, Training.paper());
        }

        public static Protocol full() {
            return new Protocol(6, 16, 2, 400, List.of(0.5, 0.6, 0.7, 0.8, 0.9), 25, 5.0, ConceptMethods.ALL, true, Mask.ATTENTION);
        }

        public static Protocol quick() {
            return new Protocol(1, 3, 1, 3, List.of(0.7), 3, 5.0, ConceptMethods.ALL, true, Mask.ATTENTION);
        }

        /** How every method's concepts are trained: the paper's settings with the protocol's steps, mask and {@link Training}. */
        public TrainingSettings training(ConceptMethod m) { return training(m, trainingSteps, mask, conceptTraining); }

        private static TrainingSettings training(ConceptMethod m, int steps, Mask mask, Training t) {
            return TrainingSettings.defaults().toBuilder().steps(steps).method(m).learningRates(t.embeddingLr(), TrainingSettings.EDIT_LR)
                    .trainingGate(t.trainBeta(), t.trainTau()).schedule(0, 0).attentionMasks(mask == Mask.ATTENTION)
                    .iStarAfterObjects(t.iStarAfterObjects()).build();
        }
    }

    /**
     * What the protocol may change of how every method trains, beside steps and mask: the word embedding's learning
     * rate (0: the supercategory's kept), i* tracked after other objects too, and the training gate.
     */
    public record Training(double embeddingLr, boolean iStarAfterObjects, double trainBeta, double trainTau) {
        /** The paper's. */
        public static Training paper() {
            return new Training(TrainingSettings.EMBEDDING_LR, false, TrainingSettings.TRAIN_BETA, TrainingSettings.TRAIN_TAU);
        }

        /** For the report's first line: the embedding's rate always, i* and the gate where they depart from the paper's. */
        String describe() {
            StringBuilder sb = new StringBuilder("; embedding learning rate ")
                    .append(embeddingLr == 0 ? "0, the supercategory's kept" : Double.toString(embeddingLr));
            if (iStarAfterObjects) sb.append("; i* also after other objects");
            if (trainBeta != TrainingSettings.TRAIN_BETA || trainTau != TrainingSettings.TRAIN_TAU) {
                sb.append("; training gate beta ").append(trainBeta).append(", tau ").append(trainTau);
            }
            return sb.toString();
        }
    }

    /** How the training loss is weighted: not at all, by the model's own attention, or by the renderer's true masks. */
    public enum Mask { NONE, ATTENTION, TRUTH }

    /**
     * One scored picture; {@code identified}: the instance encoder picks the trained instance, out of all the held-out
     * ones, for the concept's region of the picture; {@code details}: 1 where it picks it out of its look-alikes too,
     * else 0 (NaN: not measured, in scores of runs before it); {@code twice}: for a prompt that names one object, 1 where
     * the object counter reads two objects in the picture, else 0 (NaN: a two-object prompt, or a run before it).
     */
    public record Score(String method, String variant, double beta, String instance, String prompt, long seed,
                        double fidelity, double alignment, double leakage, boolean identified, double clipImage, double clipText,
                        double details, double twice) {}

    /**
     * Means of one method variant over all its pictures (identification and details: the fractions identified), with
     * its file size and training time.
     */
    public record Summary(String method, String variant, double beta, double fidelity, double alignment, double leakage,
                          double identification, double details, double drawnTwice, double clipImage, double clipText, long fileBytes, double trainingSeconds,
                          int pictures) {}

    /**
     * The multi-concept section's row: one combination mode over its pictures; {@code fidelityFirst} and
     * {@code fidelitySecond}: the first- and second-named concept's, on its prompted side; {@code bothIdentified}: each side's
     * instance picked on the side the prompt puts it; {@code bothSwapped}: both picked, each on the other side (the
     * model drew both, but not where the prompt said). {@code failures}: where each of the two concepts went.
     */
    public record Combination(String mode, double fidelityFirst, double fidelitySecond, double alignment, double bothIdentified,
                              double bothSwapped, Failures failures, int pictures) {}

    /**
     * Each concept of a two-concept picture counted on its own (two per picture): picked on either half
     * ({@code identified}); not picked but its category in the picture ({@code drawnNotItself}: drawn as another
     * instance); its category absent ({@code notDrawn}). The three add up to 1. {@code oneOnBoth}: the fraction of
     * pictures in which both halves are picked as the same one of the two instances (one concept drawn twice).
     * By the place of its word in the prompt: {@code firstPicked} and {@code secondPicked}, the fractions of pictures
     * in which the first-named and the second-named concept is picked on either half (their mean is
     * {@code identified}); {@code firstOnBoth}: the part of {@code oneOnBoth} in which the twice-drawn one is the
     * first-named. The text encoder is causal, so the words before a concept's word change its encoding. By the side
     * the prompt puts it on: {@code leftPicked} and {@code rightPicked} (their mean is {@code identified} too).
     */
    public record Failures(double identified, double drawnNotItself, double notDrawn, double oneOnBoth,
                           double firstPicked, double secondPicked, double firstOnBoth, double leftPicked, double rightPicked) {}

    /**
     * One two-concept picture: its combination, prompt and seed, the instances the prompt puts on the left and the
     * right and the one it names first, the instance picked on each half (out of the gallery of held-out ones), and
     * whether the judge sees each prompted instance's category anywhere.
     */
    public record PairPicture(String combination, String prompt, int seed, String left, String right, String namedFirst,
                              String pickedLeft, String pickedRight, boolean leftCategoryDrawn, boolean rightCategoryDrawn) {}

    /** {@code pairPictures}: the two-concept section's pictures one by one (empty without the section). */
    public record Report(List<Score> scores, List<Summary> summaries, List<Combination> combinations, List<PairPicture> pairPictures) {}

    private final StableDiffusion sd;
    private final Tensor cInv;
    private final AttributeClassifier judge;
    private final InstanceEncoder encoder;
    private final WorldClip clip;
    private final ObjectCounter counter;
    private final Protocol protocol;
    private final Path work;
    private final Progress progress;
    /** The world at the judges' size: the references identification compares with. */
    private final WorldGenerator world = new WorldGenerator();
    /** The world at the model's picture size: the pictures a concept learns from, and the judges' ceilings. */
    private final WorldGenerator worldAtModelSize;
    /** Whether a concept that work/concepts already holds, trained the same way for the same model, is used again. */
    private boolean reuseConcepts;

    public MethodEvaluation(StableDiffusion sd, Tensor cInv, WorldJudges judges, Protocol protocol, Path work, Progress progress) {
        this.sd = sd;
        this.cInv = cInv;
        this.judge = judges.classifier();
        this.encoder = judges.instances();
        this.clip = judges.clip();
        this.counter = judges.counter();
        this.protocol = protocol;
        this.work = work;
        this.progress = progress;
        this.worldAtModelSize = new WorldGenerator(sd.pictureSize());
    }

    /**
     * Uses again each concept that an earlier run with the same --out left in work/concepts, where its word, base model
     * and recorded training settings are this protocol's: an interrupted run resumes, and a change that does not touch
     * training (the pairs' combination, the scores) is measured on the same concepts. Training times then count only
     * the concepts trained in this run.
     */
    public MethodEvaluation reusingConcepts() {
        reuseConcepts = true;
        return this;
    }

    /** A concept to evaluate: a held-out instance with its word, pictures, reference embedding and row of the gallery. */
    /** {@code lookAlikes}: the instance's reference (row 0), then each of its look-alikes' (null for an instance without details). */
    private record Subject(Instance instance, String word, String supercategory, Path pictures, Tensor reference, Tensor clipReference,
                           int galleryRow, Tensor lookAlikes) {}

    /** The reference embeddings of every held-out instance, one row each: what identification picks from. */
    private Tensor gallery;
    /** The instance of each row of the gallery. */
    private List<String> galleryIds;

    private record Trained(ConceptFile concept, long fileBytes, double seconds) {}

    public Report run(List<Instance> heldOut) throws IOException {
        List<Score> scores = new ArrayList<>();
        Map<String, long[]> sizes = new LinkedHashMap<>();
        Map<String, double[]> seconds = new LinkedHashMap<>();
        List<Subject> subjects = new ArrayList<>();
        List<Prompts.Prompt> prompts = Prompts.evaluationPrompts().subList(0, Math.min(protocol.prompts(), Prompts.evaluationPrompts().size()));
        List<Tensor> references = new ArrayList<>();
        for (Instance inst : heldOut) references.add(reference(inst));
        gallery = Scope.keep(Ops.stack(references, 0));
        galleryIds = heldOut.stream().map(Instance::id).toList();
        for (int k = 0; k < Math.min(protocol.instances(), heldOut.size()); k++) subjects.add(subject(heldOut.get(k), references.get(k), k));
        Map<Subject, ConceptFile> perfusionConcepts = new LinkedHashMap<>();
        try {
            Report done = run(subjects, prompts, scores, sizes, seconds, perfusionConcepts);
            Files.deleteIfExists(work.resolve(SCORES_SO_FAR)); // an earlier failed run's: this run's report has them all
            return done;
        } catch (Throwable e) { // native memory running out is an OutOfMemoryError
            // hours of scores are not lost with the run: the instances done stay readable, their concepts reusable
            if (!scores.isEmpty()) {
                Path sofar = work.resolve(SCORES_SO_FAR);
                try {
                    AtomicFiles.write(sofar, scoresCsv(scores).getBytes(StandardCharsets.UTF_8));
                    progress.message((e instanceof Stopping.Stopped ? "stopped" : "the run failed") + "; the scores so far are in " + sofar + " and its concepts in " + work.resolve("concepts")
                            + " (a rerun with --reuse-concepts trains only what is missing)");
                } catch (IOException | RuntimeException unwritten) {
                    e.addSuppressed(unwritten); // the run's own failure is the one to report
                }
            }
            throw e;
        }
    }

    /** The scores of the instances drawn before a run failed, beside the concepts; a finished run removes them. */
    static final String SCORES_SO_FAR = "scores-so-far.csv";

    private Report run(List<Subject> subjects, List<Prompts.Prompt> prompts, List<Score> scores, Map<String, long[]> sizes,
                       Map<String, double[]> seconds, Map<Subject, ConceptFile> perfusionConcepts) throws IOException {
        for (Subject subject : subjects) {
            scores.addAll(score("base model", "supercategory word", Double.NaN, subject, prompts, null));
            scores.addAll(scoreRendered(subject, prompts));
            for (ConceptMethod m : protocol.methods()) {
                Trained t = train(subject, m);
                sizes.computeIfAbsent(m.id(), x -> new long[1])[0] = t.fileBytes();
                seconds.computeIfAbsent(m.id(), x -> new double[2]);
                if (!Double.isNaN(t.seconds())) {
                    seconds.get(m.id())[0] += t.seconds();
                    seconds.get(m.id())[1] += 1;
                }
                // the multi-concept section combines the paper's method's concepts
                if (m == ConceptMethods.PERFUSION) perfusionConcepts.put(subject, t.concept());
                for (ConceptMethod.OperatingPoint p : m.operatingPoints(protocol.betas())) {
                    double beta = Double.isNaN(p.beta()) ? t.concept().beta() : p.beta();
                    try (AppliedConcepts a = apply(List.of(t.concept()), beta, ConceptGate.Orthogonalization.EXACT, p.globalKeyLocking())) {
                        scores.addAll(score(m.id(), p.variant(), p.beta(), subject, prompts, a.startingAt(protocol.conceptStart())));
                    }
                }
            }
        }
        // only Perfusion's concepts are combined: without them (--method naming others only) there is no pair section
        List<PairPicture> pairPictures = new ArrayList<>();
        List<Combination> combinations = protocol.multiConcept() && !perfusionConcepts.isEmpty() ? combine(subjects, perfusionConcepts, pairPictures) : List.of();
        return new Report(scores, summarise(scores, sizes, seconds), combinations, pairPictures);
    }

    /** The seed of the six views of an instance that a concept learns from and its reference embedding is made of. */
    private static final long REFERENCE_SEED = 42;

    /** An instance's reference embedding: the mean of its six reference views, the same views for every instance. */
    private Tensor reference(Instance inst) {
        return encoder.reference(AttributeClassifier.pictures(world.views(inst, 6, REFERENCE_SEED)));
    }

    private Subject subject(Instance inst, Tensor reference, int galleryRow) throws IOException {
        String category = inst.category().word();
        Path dir = work.resolve("pictures").resolve(inst.id());
        Files.createDirectories(dir);
        List<Sample> views = worldAtModelSize.views(inst, 6, REFERENCE_SEED);
        Tensor clipReference = clip.imageEmbeds(AttributeClassifier.picturesOf(views.stream().map(Sample::image).toList()));
        Path masks = Files.createDirectories(dir.resolveSibling(inst.id() + "-masks"));
        for (int i = 0; i < views.size(); i++) {
            Png.write(dir.resolve(String.format(Locale.ROOT, "%02d.png", i)), views.get(i).image(), Map.of());
            Png.write(masks.resolve(String.format(Locale.ROOT, "%02d.png", i)), views.get(i).maskImage(0), Map.of());
        }
        List<Tensor> lookAlikes = new ArrayList<>(List.of(reference));
        for (Instance other : inst.withoutEachDetail()) lookAlikes.add(reference(other));
        return new Subject(inst, "my-" + category, category, dir, reference, clipReference, galleryRow,
                lookAlikes.size() > 1 ? Scope.keep(Ops.stack(lookAlikes, 0)) : null);
    }

    private Trained train(Subject s, ConceptMethod m) throws IOException {
        Path out = conceptFile(work, s.instance().id(), m, protocol.mask());
        Files.createDirectories(out.getParent());
        TrainingSettings settings = protocol.training(m);
        if (reuseConcepts && Files.isRegularFile(out)) {
            ConceptFile earlier = ConceptFile.load(out);
            if (trainedAlike(earlier, s.word(), sd.unetHash(), sd.textEncoderHash(), sd.clipSkip(), settings)) {
                progress.message(s.instance().id() + " " + m.id() + ": the concept trained earlier, " + out);
                return new Trained(earlier, Files.size(out), Double.NaN);
            }
            progress.message(s.instance().id() + " " + m.id() + ": " + out + " was trained otherwise; training again");
        }
        Path masks = protocol.mask() == Mask.TRUTH ? s.pictures().resolveSibling(s.instance().id() + "-masks") : null;
        ConceptTrainer.Result r = new ConceptTrainer(sd, cInv, s.word(), s.supercategory(), settings).train(s.pictures(), masks, out, false, null, progress);
        progress.message(String.format(Locale.ROOT, "%s %s: %.0fs, loss %.4f -> %.4f", s.instance().id(), m.id(), r.seconds(), r.probeBefore(), r.probeAfter()));
        return new Trained(r.concept(), Files.size(out), r.seconds());
    }

    /** Where a run keeps an instance's concept of a method; the settings record "files or none" for both mask files and none, so truth-mask concepts are kept apart by name. */
    static Path conceptFile(Path work, String instance, ConceptMethod m, Mask mask) {
        return work.resolve("concepts").resolve(instance + "-" + m.id() + (mask == Mask.TRUTH ? "-truth-masks" : "") + ".safetensors");
    }

    /** Whether a concept kept from an earlier run is what this run would train: word, model, text encoder and its layer, settings. */
    static boolean trainedAlike(ConceptFile earlier, String word, String unetHash, String textEncoderHash, int clipSkip, TrainingSettings settings) {
        Map<String, String> recorded = new LinkedHashMap<>(earlier.settings());
        recorded.remove(ConceptFile.COVARIANCE_SETTING);
        recorded.remove(ConceptFile.CLIP_SKIP_SETTING);
        return earlier.word().equals(word) && earlier.baseModelHash().equals(unetHash) && earlier.textEncoderHash().equals(textEncoderHash)
                && earlier.clipSkip() == clipSkip && recorded.equals(settings.describe());
    }

    private AppliedConcepts apply(List<ConceptFile> concepts, double beta, ConceptGate.Orthogonalization o, boolean global) {
        List<AppliedConcepts.Use> uses = new ArrayList<>();
        for (ConceptFile c : concepts) uses.add(new AppliedConcepts.Use(c, beta, c.tau()));
        return AppliedConcepts.apply(sd, cInv, uses, o, global);
    }

    /** Every prompt of the protocol for every seed, drawn with {@code encoder} (null: the base model) and scored. */
    private List<Score> score(String method, String variant, double beta, Subject s, List<Prompts.Prompt> prompts, PromptEncoder concept) {
        List<Score> out = new ArrayList<>();
        PromptEncoder enc = concept != null ? concept : sd::encodePrompts;
        String phrase = concept != null ? s.word() : s.supercategory();
        List<String> texts = prompts.stream().map(p -> p.fill(phrase)).toList();
        List<String> withSupercategory = prompts.stream().map(p -> p.fill(s.supercategory())).toList();
        for (int seed = 0; seed < protocol.seeds(); seed++) {
            out.addAll(scorePictures(method, variant, beta, s, prompts, texts, withSupercategory, seed, draw(enc, texts, pictureSeed(seed))));
        }
        return out;
    }

    private static long pictureSeed(int seed) {
        return 1000L * seed + 17;
    }

    /**
     * The world's own picture of each prompt with the instance drawn as asked, scored as a method's: what the judges
     * can read at best, so a method's scores have a ceiling (as prompt following has its judge on rendered pictures).
     */
    private List<Score> scoreRendered(Subject s, List<Prompts.Prompt> prompts) {
        List<Score> out = new ArrayList<>();
        List<String> withSupercategory = prompts.stream().map(p -> p.fill(s.supercategory())).toList();
        for (int seed = 0; seed < protocol.seeds(); seed++) {
            long sceneSeed = pictureSeed(seed);
            List<BufferedImage> images = prompts.stream().map(p -> worldAtModelSize.render(p.spec(s.instance(), sceneSeed), sceneSeed).image()).toList();
            out.addAll(scorePictures(RENDERER, "the instance as asked", Double.NaN, s, prompts, withSupercategory, withSupercategory, seed, images));
            out.addAll(scorePictures(THROUGH_VAE, "the instance as asked", Double.NaN, s, prompts, withSupercategory, withSupercategory, seed, TextToImage.throughVae(sd, images)));
        }
        return out;
    }

    /** The method name of the rendered pictures' rows. */
    public static final String RENDERER = "world renderer";
    /** The rows of the same pictures through the model's VAE: the ceiling the model's decoder sets. */
    public static final String THROUGH_VAE = "world renderer, through the VAE";
    /** The two-concept section's row of the base model drawing the pairs' supercategory words. */
    public static final String BASE_PAIRS = "base model, supercategory words";

    private List<Score> scorePictures(String method, String variant, double beta, Subject s, List<Prompts.Prompt> prompts,
                                      List<String> texts, List<String> withSupercategory, int seed, List<BufferedImage> images) {
        List<Score> out = new ArrayList<>();
        Tensor pictures = AttributeClassifier.picturesOf(images);
        Map<Attribute, long[]> read = judge.predict(pictures);
        float[][] present = judge.presence(pictures);
        // a picture's regions: the whole, its left and its right half; the concept's is the side the prompt puts it on
        // (for "next to" the likelier), else the whole
        final int whole = 0, left = 1, right = 2;
        List<Tensor> regions = java.util.Arrays.asList(null, InstanceEncoder.window(Placement.LEFT), InstanceEncoder.window(Placement.RIGHT));
        double[][] likeness = new double[3][];
        long[][] picked = new long[3][], pickedOfLookAlikes = new long[3][];
        for (int r = whole; r <= right; r++) {
            likeness[r] = encoder.similarity(pictures, regions.get(r), s.reference());
            picked[r] = encoder.identify(pictures, regions.get(r), gallery);
            if (s.lookAlikes() != null) pickedOfLookAlikes[r] = encoder.identify(pictures, regions.get(r), s.lookAlikes());
        }
        double[] clipImage = clip.imageSimilarity(pictures, s.clipReference());
        double[] clipText = clip.textSimilarity(pictures, withSupercategory);
        boolean[] two = counter.twoObjects(pictures);
        for (int i = 0; i < prompts.size(); i++) {
            Prompts.Prompt p = prompts.get(i);
            double leakage = Double.NaN;
            int region;
            if (p.other() != null) {
                region = p.placement() == Placement.LEFT || (p.placement() == null && likeness[left][i] >= likeness[right][i]) ? left : right;
                leakage = likeness[region == left ? right : left][i];
            } else if (p.placement() == Placement.LEFT || p.placement() == Placement.RIGHT) {
                region = p.placement() == Placement.LEFT ? left : right;
            } else {
                region = whole;
            }
            double fidelity = likeness[region][i];
            double details = s.lookAlikes() == null ? Double.NaN : pickedOfLookAlikes[region][i] == 0 ? 1 : 0;
            int asked = 1, found = present[i][s.instance().category().ordinal()] > 0.5 ? 1 : 0;
            if (p.scene() != null) {
                asked++;
                if (read.get(Attribute.SCENE)[i] == p.scene().ordinal()) found++;
            }
            if (p.other() != null) {
                asked++;
                if (present[i][p.other().ordinal()] > 0.5) found++;
            } else if (p.placement() != null) {
                asked++;
                if (read.get(Attribute.PLACEMENT)[i] == p.placement().ordinal()) found++;
            }
            out.add(new Score(method, variant, beta, s.instance().id(), texts.get(i), seed, fidelity, found / (double) asked, leakage,
                    picked[region][i] == s.galleryRow(), clipImage[i], clipText[i], details, p.other() != null ? Double.NaN : two[i] ? 1 : 0));
        }
        return out;
    }

    private List<BufferedImage> draw(PromptEncoder enc, List<String> texts, long seed) {
        int size = sd.pictureSize();
        TextToImage.Request r = new TextToImage.Request(texts, "", protocol.guidance(), protocol.samplingSteps(), "ddim", size, size, protocol.sideSteering());
        return TextToImage.generate(sd, enc, r, seed, Progress.NONE).images();
    }

    /**
     * Pairs of separately trained Perfusion concepts in one prompt: exact against approximate combination, with the
     * keys locked at each word and globally; the base model drawing the same prompts with the supercategory words (the
     * floor: whether it draws both kinds of object at all); and the world's own pictures of the same pairs (the ceiling
     * of what the judges can read). The prompts take turns ({@link #pairPrompt}) so that each concept is named first as often as
     * second and prompted on the left as often as on the right: the place of a word and its side are told apart.
     */
    private List<Combination> combine(List<Subject> subjects, Map<Subject, ConceptFile> concepts, List<PairPicture> pictures) {
        List<Combination> out = new ArrayList<>();
        List<Scene> scenes = List.of(Scene.GRASS, Scene.SNOW, Scene.BEACH, Scene.CITY);
        List<Subject[]> pairs = new ArrayList<>();
        for (int k = 0; k + 1 < subjects.size(); k++) {
            if (!subjects.get(k).supercategory().equals(subjects.get(k + 1).supercategory())) pairs.add(new Subject[] {subjects.get(k), subjects.get(k + 1)});
        }
        if (pairs.isEmpty()) return out;
        for (boolean global : new boolean[] {false, true}) {
            for (ConceptGate.Orthogonalization mode : ConceptGate.Orthogonalization.values()) {
                PairTally tally = new PairTally(mode.name().toLowerCase(Locale.ROOT) + (global ? ", global lock" : ""), pictures);
                for (Subject[] pair : pairs) {
                    try (AppliedConcepts applied = apply(List.of(concepts.get(pair[0]), concepts.get(pair[1])), Concept.GENERATION_BETA, mode, global)) {
                        for (int seed = 0; seed < protocol.seeds(); seed++) {
                            List<PairPrompt> prompts = pairPrompts(pair, Subject::word, scenes, seed);
                            tally.add(draw(applied.startingAt(protocol.conceptStart()), prompts.stream().map(PairPrompt::text).toList(), pairSeed(seed)), pair[0], pair[1], prompts, scenes, seed);
                        }
                    }
                }
                out.add(tally.row());
            }
        }
        // the base model with the supercategory words: whether it draws both kinds of object where the concepts do not
        PairTally base = new PairTally(BASE_PAIRS, pictures);
        for (Subject[] pair : pairs) {
            for (int seed = 0; seed < protocol.seeds(); seed++) {
                List<PairPrompt> prompts = pairPrompts(pair, Subject::supercategory, scenes, seed);
                base.add(draw(sd::encodePrompts, prompts.stream().map(PairPrompt::text).toList(), pairSeed(seed)), pair[0], pair[1], prompts, scenes, seed);
            }
        }
        out.add(base.row());
        PairTally rendered = new PairTally(RENDERER, pictures), renderedThroughVae = new PairTally(THROUGH_VAE, pictures);
        for (Subject[] pair : pairs) {
            for (int seed = 0; seed < protocol.seeds(); seed++) {
                long sceneSeed = pairSeed(seed);
                List<PairPrompt> prompts = pairPrompts(pair, Subject::word, scenes, seed);
                List<BufferedImage> images = new ArrayList<>();
                for (int i = 0; i < scenes.size(); i++) {
                    boolean aOnLeft = prompts.get(i).aOnLeft();
                    images.add(worldAtModelSize.render(SceneSpec.pair((aOnLeft ? pair[0] : pair[1]).instance(), (aOnLeft ? pair[1] : pair[0]).instance(),
                            scenes.get(i), Size.MEDIUM), sceneSeed).image());
                }
                rendered.add(images, pair[0], pair[1], prompts, scenes, seed);
                renderedThroughVae.add(TextToImage.throughVae(sd, images), pair[0], pair[1], prompts, scenes, seed);
            }
        }
        out.add(rendered.row());
        out.add(renderedThroughVae.row());
        return out;
    }

    /**
     * The prompts of one seed for a pair, one per scene, naming each by {@code name} (its concept word, or its
     * supercategory for the base model), the forms taking turns over the scenes and the seeds.
     */
    private static List<PairPrompt> pairPrompts(Subject[] pair, java.util.function.Function<Subject, String> name, List<Scene> scenes, int seed) {
        List<PairPrompt> out = new ArrayList<>();
        for (int i = 0; i < scenes.size(); i++) out.add(pairPrompt(name.apply(pair[0]), name.apply(pair[1]), scenes.get(i), (i + seed) % 4));
        return out;
    }

    /** A two-concept prompt, and where it puts concept a (of a and b): named first or second, on the left or the right. */
    record PairPrompt(String text, boolean aNamedFirst, boolean aOnLeft) {}

    /**
     * Form {@code form} (0-3) of "a X on the left and a Y on the right SCENE" for concepts a and b: a is named first in
     * forms 0 and 2, and the first-named stands on the left in forms 0 and 1 ("a Y on the right and a X on the left"
     * in the others), so the four forms hold every combination of word order and side once.
     */
    static PairPrompt pairPrompt(String a, String b, Scene scene, int form) {
        boolean aFirst = form % 2 == 0, firstOnLeft = form < 2;
        String text = PairPlacement.sidedPrompt(aFirst ? a : b, aFirst ? b : a, firstOnLeft, scene);
        return new PairPrompt(text, aFirst, aFirst == firstOnLeft);
    }

    private static long pairSeed(int seed) {
        return 1000L * seed + 29;
    }

    /** Sums over two-concept pictures: each concept's fidelity, alignment, and both instances picked (or swapped). */
    private final class PairTally {
        private final String mode;
        /** Where each picture goes, one by one. */
        private final List<PairPicture> each;
        private double fidelityFirst, fidelitySecond, alignment;
        private int pictures, both, swapped, identified, drawnNotItself, notDrawn, oneOnBoth, firstOnBoth;
        /** Pictures in which a concept is picked on either half: by its word's place (first, second), by its prompted side (left, right). */
        private final int[] pickedByPlace = new int[2], pickedBySide = new int[2];

        PairTally(String mode, List<PairPicture> each) {
            this.mode = mode;
            this.each = each;
        }

        void add(List<BufferedImage> images, Subject a, Subject b, List<PairPrompt> prompts, List<Scene> scenes, int seed) {
            Tensor p = AttributeClassifier.picturesOf(images);
            List<Subject> ab = List.of(a, b);
            List<Placement> sides = List.of(Placement.LEFT, Placement.RIGHT);
            double[][][] similarity = new double[2][2][]; // [side][a or b][picture]
            long[][] pickedAt = new long[2][];            // [side][picture]: the gallery row picked there
            for (int side = 0; side < 2; side++) {
                for (int k = 0; k < 2; k++) similarity[side][k] = encoder.similarity(p, InstanceEncoder.window(sides.get(side)), ab.get(k).reference());
                pickedAt[side] = encoder.identify(p, InstanceEncoder.window(sides.get(side)), gallery);
            }
            float[][] present = judge.presence(p);
            long[] scene = judge.predict(p).get(Attribute.SCENE);
            for (int i = 0; i < images.size(); i++) {
                PairPrompt prompt = prompts.get(i);
                int first = prompt.aNamedFirst() ? 0 : 1, onLeft = prompt.aOnLeft() ? 0 : 1;
                // each concept's fidelity on the side the prompt puts it
                fidelityFirst += similarity[first == onLeft ? 0 : 1][first][i];
                fidelitySecond += similarity[first == onLeft ? 1 : 0][1 - first][i];
                boolean[] drawn = new boolean[2]; // each one's category anywhere in the picture
                for (int k = 0; k < 2; k++) drawn[k] = present[i][ab.get(k).instance().category().ordinal()] > 0.5;
                int found = (drawn[0] ? 1 : 0) + (drawn[1] ? 1 : 0) + (scene[i] == scenes.get(i).ordinal() ? 1 : 0);
                alignment += found / 3.0;
                long left = pickedAt[0][i], right = pickedAt[1][i];
                long leftRow = ab.get(onLeft).galleryRow(), rightRow = ab.get(1 - onLeft).galleryRow();
                if (left == leftRow && right == rightRow) both++;
                if (left == rightRow && right == leftRow) swapped++;
                if (left == right && (left == leftRow || left == rightRow)) {
                    oneOnBoth++;
                    if (left == ab.get(first).galleryRow()) firstOnBoth++;
                }
                for (int k = 0; k < 2; k++) {
                    Subject s = ab.get(k);
                    if (left == s.galleryRow() || right == s.galleryRow()) {
                        identified++;
                        pickedByPlace[k == first ? 0 : 1]++;
                        pickedBySide[k == onLeft ? 0 : 1]++;
                    } else if (drawn[k]) drawnNotItself++;
                    else notDrawn++;
                }
                each.add(new PairPicture(mode, prompt.text(), seed, ab.get(onLeft).instance().id(), ab.get(1 - onLeft).instance().id(),
                        ab.get(first).instance().id(), galleryIds.get((int) left), galleryIds.get((int) right), drawn[onLeft], drawn[1 - onLeft]));
                pictures++;
            }
        }

        Combination row() {
            int n = pictures;
            double concepts = 2.0 * n;
            Failures f = new Failures(identified / concepts, drawnNotItself / concepts, notDrawn / concepts, oneOnBoth / (double) n,
                    pickedByPlace[0] / (double) n, pickedByPlace[1] / (double) n, firstOnBoth / (double) n,
                    pickedBySide[0] / (double) n, pickedBySide[1] / (double) n);
            return new Combination(mode, fidelityFirst / n, fidelitySecond / n, alignment / n, both / (double) n, swapped / (double) n, f, n);
        }
    }

    private static List<Summary> summarise(List<Score> scores, Map<String, long[]> sizes, Map<String, double[]> seconds) {
        Map<String, List<Score>> groups = new LinkedHashMap<>();
        for (Score s : scores) groups.computeIfAbsent(s.method() + "|" + s.variant() + "|" + s.beta(), k -> new ArrayList<>()).add(s);
        List<Summary> out = new ArrayList<>();
        for (List<Score> g : groups.values()) {
            Score first = g.get(0);
            double f = g.stream().mapToDouble(Score::fidelity).average().orElse(Double.NaN);
            double a = g.stream().mapToDouble(Score::alignment).average().orElse(Double.NaN);
            double l = g.stream().mapToDouble(Score::leakage).filter(Double::isFinite).average().orElse(Double.NaN);
            double identified = g.stream().filter(Score::identified).count() / (double) g.size();
            double details = g.stream().mapToDouble(Score::details).filter(Double::isFinite).average().orElse(Double.NaN);
            double twice = g.stream().mapToDouble(Score::twice).filter(Double::isFinite).average().orElse(Double.NaN);
            double clipImage = g.stream().mapToDouble(Score::clipImage).average().orElse(Double.NaN);
            double clipText = g.stream().mapToDouble(Score::clipText).average().orElse(Double.NaN);
            long bytes = sizes.containsKey(first.method()) ? sizes.get(first.method())[0] : 0;
            double[] sec = seconds.get(first.method());
            out.add(new Summary(first.method(), first.variant(), first.beta(), f, a, l, identified, details, twice, clipImage, clipText, bytes, sec == null || sec[1] == 0 ? 0 : sec[0] / sec[1], g.size()));
        }
        return out;
    }

    // ---------------------------------------------------------------- report files

    public static void write(Report r, Protocol p, Path dir, String modelName) throws IOException {
        write(r, dir, markdown(r, p, modelName));
    }

    private static void write(Report r, Path dir, String markdown) throws IOException {
        Files.createDirectories(dir);
        AtomicFiles.write(dir.resolve("scores.csv"), scoresCsv(r.scores()).getBytes(StandardCharsets.UTF_8));
        if (!r.pairPictures().isEmpty()) {
            StringBuilder pairs = new StringBuilder(PAIRS_HEADER + "\n");
            for (PairPicture x : r.pairPictures()) {
                pairs.append(String.format(Locale.ROOT, "%s,%s,%d,%s,%s,%s,%s,%s,%d,%d%n", quoted(x.combination()), quoted(x.prompt()), x.seed(), x.left(),
                        x.right(), x.namedFirst(), x.pickedLeft(), x.pickedRight(), x.leftCategoryDrawn() ? 1 : 0, x.rightCategoryDrawn() ? 1 : 0));
            }
            AtomicFiles.write(dir.resolve("pairs.csv"), pairs.toString().getBytes(StandardCharsets.UTF_8));
        } else {
            Files.deleteIfExists(dir.resolve("pairs.csv")); // an earlier run's pairs beside this report would read as its
        }
        Png.write(dir.resolve("tradeoff.png"), plot(r).render(900, 560), Map.of());
        AtomicFiles.write(dir.resolve("report.md"), markdown.getBytes(StandardCharsets.UTF_8)); // last: a report says the run's files are all written
    }

    private static String scoresCsv(List<Score> scores) {
        StringBuilder csv = new StringBuilder(SCORES_HEADER + "\n");
        for (Score s : scores) {
            csv.append(String.format(Locale.ROOT, "%s,%s,%s,%s,%s,%d,%.5f,%.5f,%s,%d,%.5f,%.5f,%s,%s%n", quoted(s.method()), quoted(s.variant()),
                    Double.isNaN(s.beta()) ? "" : Double.toString(s.beta()), quoted(s.instance()), quoted(s.prompt()), s.seed(), s.fidelity(), s.alignment(),
                    orEmpty(s.leakage(), "%.5f"), s.identified() ? 1 : 0, s.clipImage(), s.clipText(), orEmpty(s.details(), "%.0f"), orEmpty(s.twice(), "%.0f")));
        }
        return csv.toString();
    }

    public static String markdown(Report r, Protocol p, String modelName) {
        return markdown(r, String.format(Locale.ROOT, "# Perfusion against its baselines on %s%n%n%d held-out instances x %d prompts x %d seeds; every method "
                        + "trained %d steps on the same 6 pictures with the same seed (loss mask: %s%s); DDIM %d steps, guidance %.1f, %s.%n%n",
                modelName, p.instances(), p.prompts(), p.seeds(), p.trainingSteps(), p.mask().name().toLowerCase(Locale.ROOT),
                p.conceptTraining().describe(), p.samplingSteps(), p.guidance(), conceptStartText(p) + sideSteeringText(p)));
    }

    /** Which denoising steps draw the concepts, for the report's first line. */
    static String conceptStartText(Protocol p) {
        long early = Math.round(p.conceptStart() * p.samplingSteps());
        return early == 0 ? "the concepts in every step (the paper's)"
                : String.format(Locale.ROOT, "the first %d steps drawn by the base model with the supercategory word, the concepts from "
                        + "then on (concept start %s)", early, p.conceptStart());
    }

    /** How the pictures' objects were steered to their prompted sides, for the report's first line. */
    static String sideSteeringText(Protocol p) {
        return p.sideSteering() == 0 ? "; objects not steered to their sides"
                : String.format(Locale.ROOT, "; each object steered to its prompted side in the first %d steps (side steering %s)",
                SideSteering.steeredSteps(p.samplingSteps()), p.sideSteering());
    }

    static String markdown(Report r, String header) {
        StringBuilder sb = new StringBuilder(header);
        sb.append("Identified: the fraction of pictures in which the instance encoder picks the trained instance out of all the held-out ones. "
                + "Details: out of its own look-alikes, the same object without its accessory and with a plain body (what sets it apart, such as the teddy's bow). "
                + "Drawn twice: of the pictures of prompts that name one object, those in which the object counter reads two.\n\n");
        sb.append("CLIP-I: mean cosine to the training pictures, CLIP-T: cosine to the prompt with the supercategory word, both under the world's CLIP.\n\n");
        sb.append("| method | variant | beta | fidelity | alignment | leakage | identified | details | drawn twice | CLIP-I | CLIP-T | file size | training time | pictures |\n"
                + "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (Summary s : r.summaries()) {
            sb.append(String.format(Locale.ROOT, "| %s | %s | %s | %.3f | %.3f | %s | %.0f%% | %s | %s | %.3f | %.3f | %s | %s | %d |%n", s.method(), s.variant(),
                    Double.isNaN(s.beta()) ? "" : String.format(Locale.ROOT, "%.2f", s.beta()), s.fidelity(), s.alignment(),
                    orEmpty(s.leakage(), "%.3f"), 100 * s.identification(), orEmpty(100 * s.details(), "%.0f%%"), orEmpty(100 * s.drawnTwice(), "%.0f%%"), s.clipImage(), s.clipText(),
                    s.fileBytes() == 0 ? "" : String.format(Locale.ROOT, "%,d B", s.fileBytes()),
                    s.trainingSeconds() == 0 ? "" : String.format(Locale.ROOT, "%.0f s", s.trainingSeconds()), s.pictures()));
        }
        sb.append(byPromptKind(r.scores())).append(byInstance(r.scores())).append(twiceByPrompt(r.scores()));
        if (!r.combinations().isEmpty()) {
            sb.append("\n## Two concepts in one prompt\n\n| combination | fidelity of the first-named | of the second-named | alignment | both identified | both, sides swapped | pictures |\n|---|---|---|---|---|---|---|\n");
            for (Combination c : r.combinations()) {
                sb.append(String.format(Locale.ROOT, "| %s | %.3f | %.3f | %.3f | %.0f%% | %.0f%% | %d |%n", c.mode(), c.fidelityFirst(), c.fidelitySecond(),
                        c.alignment(), 100 * c.bothIdentified(), 100 * c.bothSwapped(), c.pictures()));
            }
            sb.append("\nWhere each concept went (each picture's two concepts counted on their own; one drawn twice: both halves picked as the same one of the two):\n\n"
                    + "| combination | picked on either half | the first-named / the second-named | prompted on the left / on the right "
                    + "| drawn as another instance | not drawn | one drawn twice | of which the first-named |\n|---|---|---|---|---|---|---|---|\n");
            for (Combination c : r.combinations()) {
                Failures f = c.failures();
                sb.append(String.format(Locale.ROOT, "| %s | %.0f%% | %.0f%% / %.0f%% | %.0f%% / %.0f%% | %.0f%% | %.0f%% | %.0f%% | %.0f%% |%n", c.mode(),
                        100 * f.identified(), 100 * f.firstPicked(), 100 * f.secondPicked(), 100 * f.leftPicked(), 100 * f.rightPicked(),
                        100 * f.drawnNotItself(), 100 * f.notDrawn(), 100 * f.oneOnBoth(), 100 * f.firstOnBoth()));
            }
            if (!r.pairPictures().isEmpty()) sb.append(pickedByInstance(r));
        }
        return sb.toString();
    }

    /**
     * Each row's pictures split by the kind of evaluation prompt (one object; a second object on the other side; one
     * beside it): identified, fidelity, and for the pairs leakage, the concept's likeness on the other object's side.
     */
    static String byPromptKind(List<Score> scores) {
        return split(scores, s -> Prompts.evaluationPromptOf(s.prompt()).map(p -> p.kind().label()),
                Arrays.stream(Prompts.Kind.values()).map(Prompts.Kind::label).toList(),
                "By kind of prompt: identified (fidelity; for pairs / leakage, the concept's likeness on the other object's side), over that kind's pictures",
                MethodEvaluation::identifiedCell);
    }

    /** Each row's pictures split by the held-out instance trained: which instances a method draws as themselves. */
    static String byInstance(List<Score> scores) {
        List<String> instances = scores.stream().map(Score::instance).distinct().sorted().toList();
        return split(scores, s -> Optional.of(s.instance()), instances,
                "By instance: identified (fidelity; / leakage over its pair prompts), over that instance's pictures", MethodEvaluation::identifiedCell)
                + split(scores, s -> Double.isNaN(s.details()) ? Optional.empty() : Optional.of(s.instance()), instances,
                "By instance: details, the instance picked out of its look-alikes (without its accessory, with a plain body), over that instance's pictures",
                g -> String.format(Locale.ROOT, "%.0f%% of %d", 100 * g.stream().mapToDouble(Score::details).average().orElse(Double.NaN), g.size()));
    }

    /**
     * Each row's one-object pictures drawn twice, split by evaluation prompt: whether a method doubles its object
     * everywhere or in some scenes only, and whether the base model does it there too (a model's trait, not the method's).
     */
    static String twiceByPrompt(List<Score> scores) {
        List<String> singles = Prompts.evaluationPrompts().stream().filter(p -> p.kind() == Prompts.Kind.SINGLE).map(Prompts.Prompt::template).toList();
        return split(scores, s -> Double.isNaN(s.twice()) ? Optional.empty()
                        : Prompts.evaluationPromptOf(s.prompt()).filter(p -> p.kind() == Prompts.Kind.SINGLE).map(Prompts.Prompt::template), singles,
                "Drawn twice, by one-object prompt: the pictures in which the object counter reads two, of that prompt's pictures",
                g -> String.format(Locale.ROOT, "%d of %d", Math.round(g.stream().mapToDouble(Score::twice).sum()), g.size()));
    }

    /** Identified, of how many, and the mean fidelity (and leakage, where there is any) of a group of pictures. */
    private static String identifiedCell(List<Score> g) {
        double identified = g.stream().filter(Score::identified).count() / (double) g.size();
        double fidelity = g.stream().mapToDouble(Score::fidelity).average().orElse(Double.NaN);
        double leakage = g.stream().mapToDouble(Score::leakage).filter(Double::isFinite).average().orElse(Double.NaN);
        return String.format(Locale.ROOT, "%.0f%% of %d (%.3f%s)", 100 * identified, g.size(), fidelity,
                Double.isNaN(leakage) ? "" : String.format(Locale.ROOT, " / %.3f", leakage));
    }

    /**
     * One table: a row per method, variant and beta; a column per value of {@code column} (scores without one left
     * out), each cell {@code cell} of its pictures.
     */
    private static String split(List<Score> scores, Function<Score, Optional<String>> column, List<String> columns, String title,
                                Function<List<Score>, String> cell) {
        Map<String, Map<String, List<Score>>> rows = new LinkedHashMap<>();
        for (Score s : scores) {
            column.apply(s).ifPresent(c -> rows.computeIfAbsent(s.method() + " | " + s.variant() + " | "
                            + (Double.isNaN(s.beta()) ? "" : String.format(Locale.ROOT, "%.2f", s.beta())), k -> new LinkedHashMap<>())
                    .computeIfAbsent(c, k -> new ArrayList<>()).add(s));
        }
        if (rows.isEmpty()) return "";
        StringBuilder sb = new StringBuilder("\n" + title + ":\n\n| method | variant | beta |");
        for (String c : columns) sb.append(' ').append(c).append(" |");
        sb.append("\n|---|---|---|").append("---|".repeat(columns.size())).append('\n');
        rows.forEach((row, byColumn) -> {
            sb.append("| ").append(row).append(" |");
            for (String c : columns) {
                List<Score> g = byColumn.getOrDefault(c, List.of());
                if (g.isEmpty()) {
                    sb.append(" |");
                    continue;
                }
                sb.append(' ').append(cell.apply(g)).append(" |");
            }
            sb.append('\n');
        });
        return sb.toString();
    }

    /** Each instance of the pairs: the fraction of its pictures (in each combination) in which it is picked on either half. */
    private static String pickedByInstance(Report r) {
        List<String> modes = r.combinations().stream().map(Combination::mode).toList();
        List<String> instances = r.pairPictures().stream().flatMap(x -> java.util.stream.Stream.of(x.left(), x.right())).distinct().sorted().toList();
        StringBuilder sb = new StringBuilder("\nEach instance, picked on either half of its pictures (pairs.csv has every picture):\n\n| instance | "
                + String.join(" | ", modes) + " |\n|---|" + "---|".repeat(modes.size()) + "\n");
        for (String instance : instances) {
            sb.append("| ").append(instance).append(" |");
            for (String mode : modes) {
                List<PairPicture> its = r.pairPictures().stream().filter(x -> x.combination().equals(mode)
                        && (x.left().equals(instance) || x.right().equals(instance))).toList();
                long picked = its.stream().filter(x -> x.pickedLeft().equals(instance) || x.pickedRight().equals(instance)).count();
                sb.append(String.format(Locale.ROOT, " %.0f%% of %d |", 100.0 * picked / its.size(), its.size()));
            }
            sb.append('\n');
        }
        return sb.toString();
    }

    // ---------------------------------------------------------------- earlier runs merged

    private static final String PAIRS_HEADER = "combination,prompt,seed,left,right,named_first,picked_left,picked_right,left_category_drawn,right_category_drawn";
    private static final String SCORES_HEADER = "method,variant,beta,instance,prompt,seed,fidelity,alignment,leakage,identified,clip_image,clip_text,details,twice";
    /** The headers of the runs before the pictures drawn twice were counted, and before the details were scored: their scores read without. */
    private static final String SCORES_HEADER_BEFORE_TWICE = SCORES_HEADER.substring(0, SCORES_HEADER.lastIndexOf(',')),
            SCORES_HEADER_BEFORE_DETAILS = SCORES_HEADER_BEFORE_TWICE.substring(0, SCORES_HEADER_BEFORE_TWICE.lastIndexOf(','));

    /** The scores an earlier run wrote (its scores.csv). */
    public static List<Score> readScores(Path csv) throws IOException {
        List<String> lines = Files.readAllLines(csv, StandardCharsets.UTF_8);
        if (lines.isEmpty() || !List.of(SCORES_HEADER, SCORES_HEADER_BEFORE_TWICE, SCORES_HEADER_BEFORE_DETAILS).contains(lines.get(0))) {
            throw new IOException(csv + ": not the scores.csv of an evaluation: its first line should be '" + SCORES_HEADER + "'");
        }
        int columns = lines.get(0).split(",").length;
        List<Score> scores = new ArrayList<>();
        for (int n = 1; n < lines.size(); n++) {
            if (lines.get(n).isBlank()) continue;
            List<String> c = csvFields(lines.get(n));
            if (c.size() != columns) throw new IOException(csv + " line " + (n + 1) + ": " + c.size() + " columns, expected " + columns + " (" + lines.get(0) + ")");
            try {
                scores.add(new Score(c.get(0), c.get(1), orNaN(c.get(2)), c.get(3), c.get(4), Long.parseLong(c.get(5)), Double.parseDouble(c.get(6)),
                        Double.parseDouble(c.get(7)), orNaN(c.get(8)), c.get(9).equals("1"), Double.parseDouble(c.get(10)), Double.parseDouble(c.get(11)),
                        columns > 12 ? orNaN(c.get(12)) : Double.NaN, columns > 13 ? orNaN(c.get(13)) : Double.NaN));
            } catch (NumberFormatException e) {
                throw new IOException(csv + " line " + (n + 1) + ": not a number where one is expected (" + e.getMessage() + ")");
            }
        }
        return scores;
    }

    /**
     * One report from earlier runs' scores: each row (method, variant, beta) comes from the first run that has it,
     * so the base model's rows, which every run draws, are counted once. Sizes, times and the two-concept section
     * stay in the runs' own reports.
     */
    public static Report merge(List<List<Score>> runs) {
        List<Score> merged = new ArrayList<>();
        Set<String> taken = new HashSet<>();
        for (List<Score> run : runs) {
            Set<String> here = new HashSet<>();
            for (Score s : run) {
                String row = s.method() + "|" + s.variant() + "|" + s.beta();
                if (taken.contains(row)) continue;
                here.add(row);
                merged.add(s);
            }
            taken.addAll(here);
        }
        return new Report(merged, summarise(merged, Map.of(), Map.of()), List.of(), List.of());
    }

    /** Writes a merged report (scores.csv, report.md, tradeoff.png) into {@code dir}. */
    /**
     * The model and protocol an eval run was made with: the title and first paragraph of its report.md (methods and
     * betas are not in them, so runs split by method compare equal); null for a merged report or a folder without one.
     */
    public static String protocolOf(Path run) throws IOException {
        Path report = run.resolve("report.md");
        if (!Files.isRegularFile(report)) return null;
        String[] paragraphs = Files.readString(report).split("\\R\\R", 3);
        if (paragraphs.length < 2 || paragraphs[0].endsWith(", merged")) return null;
        return paragraphs[0].strip() + "\n" + paragraphs[1].strip();
    }

    /**
     * Where runs say they were made otherwise than the first (their report.md's model and protocol): one table of them
     * may compare unlike pictures. Said, not refused: a model loaded from another folder, or a report of an older
     * wording, reads otherwise too.
     */
    public static List<String> otherProtocols(List<Path> runs) throws IOException {
        Path first = null;
        String firstProtocol = null;
        List<String> other = new ArrayList<>();
        for (Path run : runs) {
            String protocol = protocolOf(run);
            if (protocol == null) continue;
            if (firstProtocol == null) {
                first = run;
                firstProtocol = protocol;
            } else if (!protocol.equals(firstProtocol)) {
                other.add(run + " says it was made otherwise than " + first + " (\"" + protocol.replace("\n", " ") + "\" against \""
                        + firstProtocol.replace("\n", " ") + "\")");
            }
        }
        return other;
    }

    public static String writeMerged(Report r, List<Path> runs, Path dir) throws IOException {
        StringBuilder unlike = new StringBuilder();
        for (String other : otherProtocols(runs)) unlike.append("**Note**: ").append(other).append(".\n\n");
        String markdown = markdown(r, String.format(Locale.ROOT, "# Perfusion against its baselines, merged%n%nFrom the scores of %s: each row from the first "
                + "of them that has it; each run's protocol, file sizes, training times and two-concept section are in its own report.md.%n%n%s",
                String.join(", ", runs.stream().map(Path::toString).toList()), unlike));
        write(r, dir, markdown);
        return markdown;
    }

    /** A CSV text field: in double quotes, a quote doubled, so that commas ("world renderer, through the VAE") stay in it. */
    private static String quoted(String field) {
        return "\"" + field.replace("\"", "\"\"") + "\"";
    }

    private static double orNaN(String v) {
        return v.isEmpty() ? Double.NaN : Double.parseDouble(v);
    }

    /** The fields of one CSV line; a field in double quotes may hold commas ("" is a quote). */
    private static List<String> csvFields(String line) {
        List<String> out = new ArrayList<>();
        StringBuilder field = new StringBuilder();
        boolean quoted = false;
        for (int i = 0; i < line.length(); i++) {
            char ch = line.charAt(i);
            if (quoted && ch == '"' && i + 1 < line.length() && line.charAt(i + 1) == '"') {
                field.append('"');
                i++;
            } else if (ch == '"') {
                quoted = !quoted;
            } else if (ch == ',' && !quoted) {
                out.add(field.toString());
                field.setLength(0);
            } else {
                field.append(ch);
            }
        }
        out.add(field.toString());
        return out;
    }

    private static String orEmpty(double v, String format) {
        return Double.isNaN(v) ? "" : String.format(Locale.ROOT, format, v);
    }

    public static Plot plot(Report r) {
        Plot plot = new Plot("Text alignment against concept fidelity", "fidelity (instance-encoder similarity to the training pictures)", "alignment (fraction of the prompt found)");
        Map<String, List<Plot.Point>> series = new LinkedHashMap<>();
        for (Summary s : r.summaries()) {
            String name = s.method() + (s.variant().contains("lock") ? " (" + s.variant() + ")" : "");
            series.computeIfAbsent(name, k -> new ArrayList<>()).add(new Plot.Point(s.fidelity(), s.alignment(),
                    Double.isNaN(s.beta()) ? "" : String.format(Locale.ROOT, "%.1f", s.beta())));
        }
        series.forEach(plot::add);
        return plot;
    }
}
