package dev.perfusion.pipeline;

import dev.perfusion.io.Png;
import dev.perfusion.perfusion.AppliedConcepts;
import dev.perfusion.perfusion.Concept;
import dev.perfusion.perfusion.ConceptGate;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.tensor.Threads;
import dev.perfusion.util.Progress;
import org.bytedeco.pytorch.Tensor;

import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Supplier;

/**
 * Text to image as each command wrote it before {@link TextToImage#generate} (commit 635acdf), kept as the reference
 * that the shared call must reproduce bit for bit. Each method is its call site's code with only the surroundings
 * (files, progress, fields) taken out; the seed rules are theirs:
 * <ul>
 * <li>generate: picture k of a prompt uses seed+k for its initial noise and (seed+k) ^ 0x5DEECE66D for the step noise;
 * encodings computed once per prompt; --init-latents replaces only the initial noise</li>
 * <li>demo, together: the same rule, seed+k, through AppliedConcepts</li>
 * <li>beta sweep (generate --beta-sweep, demo's grid): every cell seed and seed ^ 0x5DEECE66D</li>
 * <li>method evaluation: one seed for a batch of prompts, noise [N, C, h, w], step noise seed ^ 0x5DEECE66D</li>
 * <li>prompt following: a batch from seed*1000+from, step noise {@code from}</li>
 * <li>ConceptTrainer.sample: settings.seed(), step noise 0; Pretrainer's samples: 1000+i, step noise i</li>
 * </ul>
 */
public final class FormerRecipes {
    private FormerRecipes() {}

    /** Final latents (float32, C order) and pictures. */
    public record Drawn(float[] latents, List<BufferedImage> images) {}

    /** GenerateCommand.call's loop, one prompt, {@code count} pictures from seed, seed+1, ... */
    public static List<Drawn> generateCommand(StableDiffusion sd, PromptEncoder encoder, TextToImage.Request request,
                                              long seed, int count, Tensor initLatents) {
        return asPicturesCompute(sd, () -> {
            List<Drawn> out = new ArrayList<>();
            long[] latentShape = TextToImage.latentShape(sd, request.width(), request.height());
            try (Scope scope = Scope.inference()) {
                Tensor encodings = TextToImage.conditioning(encoder, request, w -> {});
                for (int k = 0; k < count; k++) {
                    long imageSeed = seed + k;
                    Tensor noise = initLatents != null ? initLatents : new SeededNoise(imageSeed).randn(latentShape);
                    Tensor latents = TextToImage.denoise(sd, request, encodings, noise, new SeededNoise(imageSeed ^ 0x5DEECE66DL), Progress.NONE);
                    BufferedImage image = Png.toImages(TextToImage.decode(sd, latents)).get(0);
                    out.add(new Drawn(Ops.toFloats(latents), List.of(image)));
                }
            }
            return out;
        });
    }

    /** Demo's "together" pictures: seed+k for k = 0..count-1. */
    public static List<BufferedImage> demoTogether(StableDiffusion sd, AppliedConcepts applied, TextToImage.Request r, long seed, int count) {
        return asPicturesCompute(sd, () -> {
            int size = r.width();
            long[] shape = TextToImage.latentShape(sd, size, size);
            List<BufferedImage> together = new ArrayList<>();
            for (int k = 0; k < count; k++) {
                try (Scope s = Scope.inference()) {
                    // the request's side steering, as TextToImage.generate applies it (the guided batch: [negative; prompt])
                    List<String> rows = r.guidance() > 1 ? List.of(r.negativePrompt(), r.prompts().get(0)) : r.prompts();
                    SideSteering steering = SideSteering.of(applied.tokenizer(sd), rows, shape[2], shape[3], r.sideSteering());
                    Tensor latents = TextToImage.denoise(sd, r, TextToImage.conditioning(applied, r, w -> {}), null, steering,
                            steering == null ? 0 : SideSteering.steeredSteps(r.steps()),
                            new SeededNoise(seed + k).randn(shape), new SeededNoise((seed + k) ^ 0x5DEECE66DL), Progress.NONE);
                    if (steering != null) steering.release();
                    together.add(Png.toImages(TextToImage.decode(sd, latents)).get(0));
                }
            }
            return together;
        });
    }

    /** BetaSweep.grid's cells (rows: prompts, columns: betas), each from {@code seed}. */
    public static List<List<BufferedImage>> betaSweepCells(StableDiffusion sd, AppliedConcepts applied, List<String> prompts,
                                                           List<Double> betas, TextToImage.Request request, long seed) {
        return asPicturesCompute(sd, () -> {
            ConceptGate gate = applied.gate();
            List<Concept> original = new ArrayList<>();
            for (int j = 0; j < gate.conceptCount(); j++) original.add(gate.concept(j));
            long[] latentShape = TextToImage.latentShape(sd, request.width(), request.height());
            List<List<BufferedImage>> rows = new ArrayList<>();
            try {
                for (String prompt : prompts) {
                    TextToImage.Request r = new TextToImage.Request(prompt, request.negativePrompt(), request.guidance(),
                            request.steps(), request.scheduler(), request.width(), request.height());
                    List<BufferedImage> row = new ArrayList<>();
                    for (double beta : betas) {
                        for (int j = 0; j < gate.conceptCount(); j++) gate.setConcept(j, original.get(j).withGate(beta, original.get(j).tau()));
                        try (Scope s = Scope.inference()) {
                            Tensor encodings = TextToImage.conditioning(applied, r, w -> {});
                            Tensor latents = TextToImage.denoise(sd, r, encodings, new SeededNoise(seed).randn(latentShape),
                                    new SeededNoise(seed ^ 0x5DEECE66DL), Progress.NONE);
                            row.add(Png.toImages(TextToImage.decode(sd, latents)).get(0));
                        }
                    }
                    rows.add(row);
                }
            } finally {
                for (int j = 0; j < gate.conceptCount(); j++) gate.setConcept(j, original.get(j));
            }
            return rows;
        });
    }

    /** MethodEvaluation.draw: a batch of prompts from one seed, DDIM. */
    public static Drawn methodEvaluation(StableDiffusion sd, PromptEncoder enc, List<String> texts, double guidance, int steps, long seed) {
        return asPicturesCompute(sd, () -> {
            int size = sd.unet.config().sampleSize() * sd.vaeScaleFactor();
            TextToImage.Request r = new TextToImage.Request(texts.get(0), "", guidance, steps, "ddim", size, size);
            try (Scope sc = Scope.inference()) {
                Tensor e = TextToImage.conditioning(enc, texts, "", guidance, w -> {});
                long[] shape = TextToImage.latentShape(sd, size, size);
                shape[0] = texts.size();
                Tensor latents = TextToImage.denoise(sd, r, e, new SeededNoise(seed).randn(shape), new SeededNoise(seed ^ 0x5DEECE66DL), Progress.NONE);
                return new Drawn(Ops.toFloats(latents), Png.toImages(TextToImage.decode(sd, latents)));
            }
        });
    }

    /** PromptFollowing.measure: one batch of prompts, from index {@code from} of the run with {@code seed}. */
    public static Drawn promptFollowing(StableDiffusion sd, List<String> prompts, double guidance, int steps, long seed, int from) {
        return asPicturesCompute(sd, () -> {
            try (Scope s = Scope.inference()) {
                TextToImage.Request r = new TextToImage.Request(prompts.get(0), "", guidance, steps, "ddim", 64, 64);
                Tensor e = TextToImage.conditioning(sd::encodePrompts, prompts, "", guidance, w -> {});
                long[] shape = TextToImage.latentShape(sd, 64, 64);
                shape[0] = prompts.size();
                Tensor noise = new SeededNoise(seed * 1000 + from).randn(shape);
                Tensor latents = TextToImage.denoise(sd, r, e, noise, new SeededNoise(from), Progress.NONE);
                return new Drawn(Ops.toFloats(latents), Png.toImages(TextToImage.decode(sd, latents)));
            }
        });
    }

    /** ConceptTrainer.sample: "a photo of a WORD" from the training seed, step noise 0 ({@code steps}: 25 there). */
    public static Drawn trainerRender(StableDiffusion sd, PromptEncoder encoder, String word, int resolution, long trainingSeed, int steps) {
        return asPicturesCompute(sd, () -> {
            try (Scope s = Scope.inference()) {
                TextToImage.Request r = new TextToImage.Request("a photo of a " + word, "", 5.0, steps, "ddim", resolution, resolution);
                Tensor e = TextToImage.conditioning(encoder, r, w -> {});
                Tensor latents = TextToImage.denoise(sd, r, e, new SeededNoise(trainingSeed).randn(TextToImage.latentShape(sd, resolution, resolution)),
                        new SeededNoise(0), Progress.NONE);
                return new Drawn(Ops.toFloats(latents), Png.toImages(TextToImage.decode(sd, latents)));
            }
        });
    }

    /** Pretrainer.diffusionSamples: sample prompt i from 1000+i, step noise i ({@code steps}: 25 there). */
    public static Drawn pretrainerSample(StableDiffusion sd, String prompt, int i, int imageSize, int steps) {
        return asPicturesCompute(sd, () -> {
            try (Scope s = Scope.inference()) {
                TextToImage.Request r = new TextToImage.Request(prompt, "", 4.0, steps, "ddim", imageSize, imageSize);
                Tensor e = TextToImage.conditioning(sd, r, w -> {});
                Tensor noise = new SeededNoise(1000 + i).randn(TextToImage.latentShape(sd, imageSize, imageSize));
                Tensor latents = TextToImage.denoise(sd, r, e, noise, new SeededNoise(i), Progress.NONE);
                return new Drawn(Ops.toFloats(latents), Png.toImages(TextToImage.decode(sd, latents)));
            }
        });
    }

    /** The recipe computed as pictures are now: a small model's on one thread ({@link StableDiffusion#smallUNet}). */
    private static <T> T asPicturesCompute(StableDiffusion sd, Supplier<T> recipe) {
        try (Threads.SideBySide oneThread = sd.smallUNet() ? Threads.sideBySide(1, "former-recipe") : null) {
            return recipe.get();
        }
    }

    /** Bit-identical float arrays (NaN patterns included). */
    public static boolean sameBits(float[] a, float[] b) {
        if (a.length != b.length) return false;
        for (int i = 0; i < a.length; i++) if (Float.floatToRawIntBits(a[i]) != Float.floatToRawIntBits(b[i])) return false;
        return true;
    }

    /** Identical size and RGB of every pixel. */
    public static boolean samePixels(BufferedImage a, BufferedImage b) {
        if (a.getWidth() != b.getWidth() || a.getHeight() != b.getHeight()) return false;
        int[] pa = a.getRGB(0, 0, a.getWidth(), a.getHeight(), null, 0, a.getWidth());
        int[] pb = b.getRGB(0, 0, b.getWidth(), b.getHeight(), null, 0, b.getWidth());
        return Arrays.equals(pa, pb);
    }

    /** SHA-256 of the latents' bits and the pictures' pixels, to compare runs by eye. */
    public static String hash(float[] latents, List<BufferedImage> images) {
        try {
            java.security.MessageDigest d = java.security.MessageDigest.getInstance("SHA-256");
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(latents.length * 4);
            b.asFloatBuffer().put(latents);
            d.update(b.array());
            for (BufferedImage im : images) {
                for (int p : im.getRGB(0, 0, im.getWidth(), im.getHeight(), null, 0, im.getWidth())) {
                    d.update(new byte[] {(byte) (p >> 16), (byte) (p >> 8), (byte) p});
                }
            }
            return java.util.HexFormat.of().formatHex(d.digest()).substring(0, 16);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
