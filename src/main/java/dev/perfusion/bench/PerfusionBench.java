package dev.perfusion.bench;

import dev.perfusion.io.Png;
import dev.perfusion.perfusion.AppliedConcepts;
import dev.perfusion.perfusion.ConceptFile;
import dev.perfusion.perfusion.ConceptGate;
import dev.perfusion.perfusion.Concept;
import dev.perfusion.perfusion.ProjectionEdit;
import dev.perfusion.training.ConceptTrainer;
import dev.perfusion.training.TrainingSettings;
import dev.perfusion.training.TrainingImages;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.sampling.SchedulerConfig;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.text.ClipTextModel;
import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.unet.Attention;
import dev.perfusion.unet.UNet2DConditionModel;
import dev.perfusion.util.ProcessMemory;
import dev.perfusion.util.Progress;
import dev.perfusion.vae.AutoencoderKL;
import dev.perfusion.world.HeldOut;
import dev.perfusion.world.Sample;
import dev.perfusion.world.WorldGenerator;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import static dev.perfusion.bench.Timing.median;
import static dev.perfusion.bench.Timing.timed;

/** Perfusion's costs on a random-weight model: concept file size, the edit's cost per UNet step, training steps. */
final class PerfusionBench {
    private PerfusionBench() {}

    /** Words the benchmark's prompts use, each one token. */
    private static final List<String> WORDS = List.of("a", "photo", "of", "good", "the", "image", "photograph", "shown", "in", "teddy");

    /** Adds Perfusion's measures to {@code results}, on the model {@link EngineBench} built. */
    static void run(UNet2DConditionModel unet, ClipTextModel text, AutoencoderKL vae, SchedulerConfig scheduler, List<Integer> sizes,
                    int repeats, Map<String, String> results, Progress out) throws IOException {
        StableDiffusion sd = StableDiffusion.of(tinyTokenizer(WORDS), text, unet, vae, scheduler, "random");
        long dim = text.config().hiddenSize();
        Tensor cInv = Scope.keep(torch.eye(dim));
        ConceptFile concept = randomConcept(sd, dim);
        try (dev.perfusion.io.AtomicFiles.ScratchFolder scratch = dev.perfusion.io.AtomicFiles.ScratchFolder.create("perfusion-bench")) {
            Path dir = scratch.dir();
            Path file = dir.resolve("concept.safetensors");
            concept.save(file);
            results.put("concept file (" + concept.layerCount() + " layers)", String.format(Locale.ROOT, "%,d bytes", Files.size(file)));

            for (int size : sizes) {
                long latent = size / 8;
                try (Scope s = Scope.inference()) {
                    Tensor sample = Ops.ones(2, unet.config().inChannels(), latent, latent), t = Ops.fromFloats(new float[] {500f}, 1);
                    Tensor plainText = sd.encodePrompts(List.of("", "a photo of a teddy"), w -> {});
                    double plain = median(timed(repeats, () -> unet.forward(sample, t, plainText)));
                    double edited;
                    try (AppliedConcepts applied = AppliedConcepts.apply(sd, cInv, List.of(new AppliedConcepts.Use(concept, Concept.GENERATION_BETA, Concept.GENERATION_TAU)),
                            ConceptGate.Orthogonalization.EXACT, false)) {
                        Tensor conceptText = applied.encode(List.of("", "a photo of a my-teddy"), w -> {});
                        unet.forward(sample, t, conceptText); // the first step computes and caches the edited K/V
                        edited = median(timed(repeats, () -> unet.forward(sample, t, conceptText)));
                    }
                    results.put(String.format(Locale.ROOT, "UNet step %dx%d with one concept vs without", size, size),
                            String.format(Locale.ROOT, "%.2f s vs %.2f s (%+.1f%%)", edited, plain, 100 * (edited - plain) / plain));
                }
            }

            Path images = Files.createDirectories(dir.resolve("images"));
            List<Sample> views = new WorldGenerator(256).views(HeldOut.instances().get(0), 4, 1);
            for (int i = 0; i < views.size(); i++) Png.write(images.resolve(i + ".png"), views.get(i).image(), Map.of());
            for (int size : sizes) {
                TrainingSettings settings = TrainingSettings.defaults().toBuilder().steps(repeats + 1).batch(1, 1)
                        .images(TrainingImages.Fit.CROP, 1, size).schedule(0, 0).attentionMasks(false).build(); // the step alone
                List<Double> stepSeconds = new ArrayList<>();
                ConceptTrainer trainer = new ConceptTrainer(sd, cInv, "my-teddy", "teddy", settings);
                long[] last = {System.nanoTime()};
                trainer.train(images, null, dir.resolve("trained.safetensors"), false, null, (task, done, total, detail) -> {
                    long now = System.nanoTime();
                    if (done > 1) stepSeconds.add((now - last[0]) / 1e9);
                    last[0] = now;
                });
                results.put(String.format(Locale.ROOT, "training step %dx%d, batch 1 (fwd + bwd to v* and o*_V)", size, size),
                        String.format(Locale.ROOT, "%.2f s (x16 for the default effective batch 16); peak memory so far %.2f GiB",
                                median(stepSeconds), ProcessMemory.peakResidentGiB()));
                out.message("trained " + settings.steps() + " steps at " + size + ": " + stepSeconds);
            }
        }
    }

    private static ConceptFile randomConcept(StableDiffusion sd, long dim) {
        List<Tensor> keys = new ArrayList<>(), values = new ArrayList<>();
        for (Attention a : sd.unet.crossAttentionLayers()) {
            keys.add(Scope.keep(torch.randn(a.innerDim())));
            values.add(Scope.keep(torch.randn(a.innerDim())));
        }
        return new ConceptFile("my-teddy", "teddy", Scope.keep(torch.randn(dim)), Scope.keep(torch.randn(dim)),
                new ProjectionEdit(ProjectionEdit.Kind.GATED_RANK_ONE, keys, values), Concept.GENERATION_BETA, Concept.GENERATION_TAU,
                "random", "random", new LinkedHashMap<>());
    }

    /** A tokenizer in CLIP's format whose vocabulary holds just these whole words (merged letter by letter). */
    private static ClipTokenizer tinyTokenizer(List<String> words) {
        Map<String, Integer> vocab = new LinkedHashMap<>();
        List<String[]> merges = new ArrayList<>();
        for (char ch = 'a'; ch <= 'z'; ch++) {
            vocab.putIfAbsent(Character.toString(ch), vocab.size());
            vocab.putIfAbsent(ch + "</w>", vocab.size());
        }
        for (String w : words) {
            String left = w.substring(0, 1);
            for (int i = 1; i < w.length(); i++) {
                String right = i == w.length() - 1 ? w.charAt(i) + "</w>" : Character.toString(w.charAt(i));
                merges.add(new String[] {left, right});
                left = left + right;
                vocab.putIfAbsent(left, vocab.size());
            }
        }
        vocab.put(ClipTokenizer.START_OF_TEXT, vocab.size());
        vocab.put(ClipTokenizer.END_OF_TEXT, vocab.size());
        return ClipTokenizer.of(vocab, merges, 77, ClipTokenizer.END_OF_TEXT);
    }
}
