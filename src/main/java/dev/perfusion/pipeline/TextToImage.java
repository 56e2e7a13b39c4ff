package dev.perfusion.pipeline;

import dev.perfusion.sampling.NoiseSource;
import dev.perfusion.sampling.Scheduler;
import dev.perfusion.sampling.Schedulers;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.util.Progress;
import org.bytedeco.pytorch.Tensor;

import java.util.List;
import java.util.function.Consumer;

/** Classifier-free-guided denoising from initial noise to latents, as diffusers' StableDiffusionPipeline. */
public final class TextToImage {
    private TextToImage() {}

    /** What to generate. {@code initialNoise} is unit-variance noise [1, C, h, w] (diffusers' {@code latents=}). */
    public record Request(String prompt, String negativePrompt, double guidance, int steps, String scheduler,
                          int width, int height) {
        public Request {
            if (steps < 1) throw new IllegalArgumentException("--steps must be at least 1, got " + steps);
            if (guidance < 0) throw new IllegalArgumentException("--guidance must be >= 0, got " + guidance);
        }
    }

    /** Text encodings for guidance: [negative, prompt] when guidance > 1 (diffusers' rule), else [prompt]. */
    public static Tensor conditioning(StableDiffusion sd, Request r, Consumer<String> warnings) {
        return conditioning(sd::encodePrompts, r, warnings);
    }

    /** The same with another encoder (one that knows learned concepts' words). */
    public static Tensor conditioning(PromptEncoder encoder, Request r, Consumer<String> warnings) {
        List<String> prompts = r.guidance() > 1 ? List.of(r.negativePrompt(), r.prompt()) : List.of(r.prompt());
        return encoder.encode(prompts, warnings);
    }

    /** Encodings for a batch of prompts sharing one negative prompt: [negatives; prompts] when guided. */
    public static Tensor conditioning(PromptEncoder encoder, List<String> prompts, String negativePrompt, double guidance,
                                      Consumer<String> warnings) {
        List<String> all = new java.util.ArrayList<>();
        if (guidance > 1) all.addAll(StableDiffusion.repeat(negativePrompt, prompts.size()));
        all.addAll(prompts);
        return encoder.encode(all, warnings);
    }

    public static long[] latentShape(StableDiffusion sd, int width, int height) {
        int f = sd.vaeScaleFactor();
        if (width % f != 0 || height % f != 0 || width <= 0 || height <= 0) {
            throw new IllegalArgumentException("--width and --height must be positive multiples of " + f + ", got "
                    + width + "x" + height);
        }
        return new long[] {1, sd.latentChannels(), height / f, width / f};
    }

    /** Runs the sampler; returns the final latents (not divided by the VAE scaling factor). */
    public static Tensor denoise(StableDiffusion sd, Request r, Tensor encodings, Tensor initialNoise,
                                 NoiseSource stepNoise, Progress progress) {
        Scheduler scheduler = Schedulers.create(r.scheduler(), sd.schedulerConfig);
        scheduler.setTimesteps(r.steps());
        double[] timesteps = scheduler.timesteps();
        // guided: encodings are [negatives; prompts], twice the batch of latents
        boolean guided = Ops.shape(encodings)[0] == 2 * Ops.shape(initialNoise)[0];
        Tensor latents = Scope.keep(initialNoise.to(sd.device, sd.dtype).mul(new org.bytedeco.pytorch.Scalar(scheduler.initNoiseSigma())));
        for (int i = 0; i < timesteps.length; i++) {
            try (Scope step = Scope.inference()) {
                Tensor input = guided ? Ops.cat(0, latents, latents) : latents;
                input = scheduler.scaleModelInput(input, i);
                Tensor t = Ops.fromFloats(new float[] {(float) timesteps[i]}, 1).to(sd.device, sd.dtype);
                Tensor prediction = sd.unet.forward(input, t, encodings);
                if (guided) {
                    Tensor[] uc = Ops.chunk(prediction, 2, 0);
                    prediction = Ops.addScaled(uc[0], Ops.sub(uc[1], uc[0]), r.guidance());
                }
                Tensor next = scheduler.step(prediction, i, latents, stepNoise);
                // a NaN would only decode to a black picture: say where it appeared instead
                Ops.requireFinite(next, "the latents after denoising step " + (i + 1) + " of " + timesteps.length);
                latents = Scope.replaceKept(latents, next);
            }
            progress.update("denoising", i + 1, timesteps.length, "t=" + Math.round(timesteps[i]));
        }
        return latents;
    }

    /** VAE-decodes latents to an image tensor [N, 3, H, W] in [0, 1]. */
    public static Tensor decode(StableDiffusion sd, Tensor latents) {
        Tensor image = Ops.requireFinite(sd.vae.imageFromLatents(latents), "the VAE's decoded picture");
        return Ops.clamp(Ops.add(Ops.mul(image, 0.5), 0.5), 0, 1);
    }
}
