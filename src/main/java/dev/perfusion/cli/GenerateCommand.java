package dev.perfusion.cli;

import dev.perfusion.io.Npy;
import dev.perfusion.io.Png;
import dev.perfusion.pipeline.SeededNoise;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.pipeline.TextToImage;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "generate", mixinStandardHelpOptions = true,
        description = {"Generate images from a text prompt.",
                "Seeds are reproducible within this project on any machine and device; they cannot match torch's "
                        + "random generator, so the same seed gives other images in other tools (use --init-latents "
                        + "to feed exact initial noise)."})
final class GenerateCommand implements Callable<Integer> {
    @Mixin ModelOptions model;

    @Option(names = "--prompt", required = true, description = "What to draw.") String prompt;
    @Option(names = "--negative-prompt", defaultValue = "", description = "What to steer away from (default: empty).") String negativePrompt;
    @Option(names = "--guidance", defaultValue = "7.5", description = "Classifier-free guidance scale (default: ${DEFAULT-VALUE}).") double guidance;
    @Option(names = "--steps", defaultValue = "30", description = "Denoising steps (default: ${DEFAULT-VALUE}).") int steps;
    @Option(names = "--scheduler", defaultValue = "ddim",
            description = "ddim, euler, euler-a, dpmpp-2m or pndm, built from the model's scheduler config (default: ${DEFAULT-VALUE}).") String scheduler;
    @Option(names = "--width", defaultValue = "512", description = "Image width in pixels (default: ${DEFAULT-VALUE}).") int width;
    @Option(names = "--height", defaultValue = "512", description = "Image height in pixels (default: ${DEFAULT-VALUE}).") int height;
    @Option(names = "--seed", defaultValue = "1", description = "Seed of the initial noise; image i uses seed+i (default: ${DEFAULT-VALUE}).") long seed;
    @Option(names = "--count", defaultValue = "1", description = "Number of images (default: ${DEFAULT-VALUE}).") int count;
    @Option(names = "--out", defaultValue = "out", description = "A .png path (one image) or a folder (default: ${DEFAULT-VALUE}).") Path out;
    @Option(names = "--init-latents", paramLabel = "FILE.npy",
            description = "Unit-variance initial noise [1, C, h, w] (what diffusers' latents= takes); replaces the seed.") Path initLatents;
    @Option(names = "--save-latents", paramLabel = "FILE.npy",
            description = "Write the final latents (float32, before VAE decoding, not divided by the scaling factor).") Path saveLatents;

    @Override
    public Integer call() throws Exception {
        if (count < 1) throw new IllegalArgumentException("--count must be at least 1, got " + count);
        if (initLatents != null && count != 1) throw new IllegalArgumentException("--init-latents gives one image: use --count 1");
        List<Path> targets = targets();
        TerminalProgress progress = new TerminalProgress(System.out);
        long started = System.nanoTime();
        StableDiffusion sd = model.load(progress);
        TextToImage.Request request = new TextToImage.Request(prompt, negativePrompt, guidance, steps, scheduler, width, height);
        long[] latentShape = TextToImage.latentShape(sd, width, height);
        try (Scope scope = Scope.inference()) {
            Tensor encodings = TextToImage.conditioning(sd, request, progress::message);
            for (int i = 0; i < count; i++) {
                long imageSeed = seed + i;
                Tensor noise = initLatents != null ? readInitLatents(latentShape) : new SeededNoise(imageSeed).randn(latentShape);
                Tensor latents = TextToImage.denoise(sd, request, encodings, noise, new SeededNoise(imageSeed ^ 0x5DEECE66DL), progress);
                if (saveLatents != null) Npy.writeTensor(count == 1 ? saveLatents : numbered(saveLatents, i), latents);
                BufferedImage image = Png.toImages(TextToImage.decode(sd, latents)).get(0);
                Png.write(targets.get(i), image, Map.of("parameters", parameters(sd, imageSeed)));
                progress.message("wrote " + targets.get(i));
            }
        }
        progress.message(String.format(Locale.ROOT, "done in %.1fs", (System.nanoTime() - started) / 1e9));
        return 0;
    }

    private Tensor readInitLatents(long[] expected) throws java.io.IOException {
        Tensor t = Npy.readTensor(initLatents);
        if (!Arrays.equals(Ops.shape(t), expected)) {
            throw new IllegalArgumentException(initLatents + ": initial latents have shape " + Ops.shapeString(t)
                    + ", but " + width + "x" + height + " needs " + Arrays.toString(expected));
        }
        return t;
    }

    /** Where each image goes; checked before any work so an unwritable output fails fast. */
    private List<Path> targets() throws java.io.IOException {
        List<Path> paths = new ArrayList<>();
        boolean single = out.toString().toLowerCase(Locale.ROOT).endsWith(".png");
        if (single && count > 1) {
            for (int i = 0; i < count; i++) paths.add(numbered(out, i));
        } else if (single) {
            paths.add(out);
        } else {
            for (int i = 0; i < count; i++) paths.add(out.resolve(String.format(Locale.ROOT, "%05d-%d.png", i, seed + i)));
        }
        Path dir = paths.get(0).toAbsolutePath().getParent();
        try {
            Files.createDirectories(dir);
        } catch (java.io.IOException e) {
            throw new java.io.IOException("cannot create output folder " + dir + ": " + e.getMessage(), e);
        }
        if (!Files.isWritable(dir)) throw new java.io.IOException("output folder " + dir + " is not writable");
        return paths;
    }

    private static Path numbered(Path p, int i) {
        String name = p.getFileName().toString();
        int dot = name.lastIndexOf('.');
        String stem = dot > 0 ? name.substring(0, dot) : name, ext = dot > 0 ? name.substring(dot) : "";
        return p.resolveSibling(stem + "-" + i + ext);
    }

    private String parameters(StableDiffusion sd, long imageSeed) {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("Steps", steps);
        p.put("Sampler", scheduler);
        p.put("CFG scale", guidance);
        p.put("Seed", initLatents != null ? "init-latents " + initLatents.getFileName() : imageSeed);
        p.put("Size", width + "x" + height);
        p.put("Model", sd.name);
        StringBuilder s = new StringBuilder(prompt);
        if (!negativePrompt.isEmpty()) s.append("\nNegative prompt: ").append(negativePrompt);
        s.append("\n");
        p.forEach((k, v) -> s.append(k).append(": ").append(v).append(", "));
        s.append("Generator: perfusion-java");
        return s.toString();
    }
}
