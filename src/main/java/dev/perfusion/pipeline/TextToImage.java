package dev.perfusion.pipeline;

import dev.perfusion.io.Png;
import dev.perfusion.sampling.NoiseSource;
import dev.perfusion.sampling.Scheduler;
import dev.perfusion.sampling.Schedulers;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.tensor.Threads;
import dev.perfusion.unet.CrossAttentionBias;
import dev.perfusion.util.Progress;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Text to image, as diffusers' StableDiffusionPipeline: {@link #generate} is the whole recipe (conditioning,
 * classifier-free-guided denoising from seeded noise, VAE decoding) that every command shares; {@link #conditioning},
 * {@link #denoise} and {@link #decode} are its parts.
 */
public final class TextToImage {
    private TextToImage() {}

    /**
     * What to generate: one picture per prompt (a batch when there are several), all with the same negative prompt
     * and sampler settings.
     */
    public record Request(List<String> prompts, String negativePrompt, double guidance, int steps, String scheduler,
                          int width, int height, double sideSteering) {
        public Request {
            prompts = List.copyOf(prompts);
            if (prompts.isEmpty()) throw new IllegalArgumentException("a request needs at least one prompt");
            if (steps < 1) throw new IllegalArgumentException("denoising steps must be at least 1, got " + steps);
            if (!(guidance >= 0)) throw new IllegalArgumentException("the guidance scale must be at least 0, got " + guidance);
            SideSteering.checkStrength(sideSteering);
        }

        /** Pictures drawn as diffusers draws them: no {@link SideSteering}. */
        public Request(List<String> prompts, String negativePrompt, double guidance, int steps, String scheduler, int width, int height) {
            this(prompts, negativePrompt, guidance, steps, scheduler, width, height, 0);
        }

        /** One picture of one prompt. */
        public Request(String prompt, String negativePrompt, double guidance, int steps, String scheduler, int width, int height) {
            this(List.of(prompt), negativePrompt, guidance, steps, scheduler, width, height);
        }

        /** The same settings for other prompts. */
        public Request withPrompts(List<String> other) {
            return new Request(other, negativePrompt, guidance, steps, scheduler, width, height, sideSteering);
        }

        /** The same with each object steered to the side its prompt puts it on, at {@code strength} ({@link SideSteering}). */
        public Request withSideSteering(double strength) {
            return new Request(prompts, negativePrompt, guidance, steps, scheduler, width, height, strength);
        }

        public Request withPrompt(String other) { return withPrompts(List.of(other)); }

        public int batch() { return prompts.size(); }
    }

    /**
     * What {@link #generate} made: a picture per prompt and the final latents [N, C, h, w] before VAE decoding (not
     * divided by the scaling factor), as float32 in C order; nothing native outlives the call.
     */
    public record Generated(List<BufferedImage> images, float[] latents, long[] latentShape) {
        public Generated {
            images = List.copyOf(images);
        }

        /** The picture of a one-prompt request. */
        public BufferedImage image() {
            if (images.size() != 1) throw new IllegalStateException("a batch of " + images.size() + " pictures has no single image");
            return images.get(0);
        }
    }

    /**
     * The seed of the per-step noise that stochastic samplers (euler-a) draw, from the picture's seed: its initial
     * noise uses the seed itself, so the two streams differ. Deterministic samplers (ddim, euler, dpmpp-2m, pndm)
     * draw no step noise.
     */
    public static long stepNoiseSeed(long seed) {
        return seed ^ 0x5DEECE66DL;
    }

    /** {@link #generate(StableDiffusion, PromptEncoder, Request, long, Progress)} with the model's own prompt encoder. */
    public static Generated generate(StableDiffusion sd, Request request, long seed, Progress progress) {
        return generate(sd, sd::encodePrompts, request, seed, progress);
    }

    /**
     * Draws the request's prompts from one seed: the initial noise [N, C, h, w] of the whole batch is
     * {@code SeededNoise.forPicture(seed)}, the per-step noise {@code SeededNoise.forPicture(stepNoiseSeed(seed))}. The same seed and
     * request give the same pictures, bit for bit, on one machine. Warnings about the prompts (truncation) go to
     * {@code progress.message}.
     *
     * @param encoder the model's ({@code sd::encodePrompts}) or one that knows learned concepts' words
     */
    public static Generated generate(StableDiffusion sd, PromptEncoder encoder, Request request, long seed, Progress progress) {
        try (Scope picture = Scope.inference()) {
            long[] shape = latentShape(sd, request.width(), request.height());
            shape[0] = request.batch();
            return generate(sd, encoder, request, SeededNoise.forPicture(seed).randn(shape), seed, progress);
        }
    }

    /**
     * The same from given unit-variance initial noise [N, C, h, w] (diffusers' {@code latents=}); {@code seed} then
     * seeds only the per-step noise. One scope holds everything the picture needs; only the result leaves it. A
     * small model's picture computes on one thread ({@link StableDiffusion#smallUNet}).
     */
    public static Generated generate(StableDiffusion sd, PromptEncoder encoder, Request request, Tensor initialNoise, long seed,
                                     Progress progress) {
        try (Threads.SideBySide oneThread = sd.smallUNet() ? Threads.sideBySide(1, "picture") : null;
             Scope picture = Scope.inference()) {
            List<String> prompts = conditioningPrompts(request.prompts(), request.negativePrompt(), request.guidance());
            Tensor encodings = encoder.encode(prompts, progress::message);
            Tensor latents;
            SideSteering steering = null;
            try {
                PromptEncoder.EarlySteps early = encoder.earlySteps(prompts, request.steps(), progress::message);
                long[] latentShape = Ops.shape(initialNoise);
                steering = SideSteering.of(encoder.tokenizer(sd), prompts, latentShape[2], latentShape[3], request.sideSteering());
                int steered = steering == null ? 0 : SideSteering.steeredSteps(request.steps());
                latents = denoise(sd, request, encodings, early, steering, steered, initialNoise, SeededNoise.forPicture(stepNoiseSeed(seed)), progress);
            } finally {
                if (steering != null) steering.release();
                encoder.drawn(encodings);
            }
            try {
                List<BufferedImage> images = Png.toImages(decode(sd, latents));
                return new Generated(images, Ops.toFloats(latents), Ops.shape(latents));
            } finally {
                latents.releaseReference(); // denoise kept it past its steps' scopes
            }
        }
    }

    /** Text encodings for guidance: [negatives; prompts] when guidance > 1 (diffusers' rule), else [prompts]. */
    public static Tensor conditioning(StableDiffusion sd, Request r, Consumer<String> warnings) {
        return conditioning(sd::encodePrompts, r, warnings);
    }

    /** The same with another encoder (one that knows learned concepts' words). */
    public static Tensor conditioning(PromptEncoder encoder, Request r, Consumer<String> warnings) {
        return conditioning(encoder, r.prompts(), r.negativePrompt(), r.guidance(), warnings);
    }

    /** Encodings for a batch of prompts sharing one negative prompt: [negatives; prompts] when guided. */
    public static Tensor conditioning(PromptEncoder encoder, List<String> prompts, String negativePrompt, double guidance,
                                      Consumer<String> warnings) {
        return encoder.encode(conditioningPrompts(prompts, negativePrompt, guidance), warnings);
    }

    /** [negatives; prompts] when guided, else the prompts: what the encoder encodes. */
    private static List<String> conditioningPrompts(List<String> prompts, String negativePrompt, double guidance) {
        List<String> all = new ArrayList<>();
        if (guidance > 1) all.addAll(StableDiffusion.repeat(negativePrompt, prompts.size()));
        all.addAll(prompts);
        return all;
    }

    /** The largest width or height of a picture: far beyond what any model here draws well, still indexable. */
    public static final int MAX_SIDE = 16384;

    public static long[] latentShape(StableDiffusion sd, int width, int height) {
        int f = sd.vaeScaleFactor();
        if (width % f != 0 || height % f != 0 || width <= 0 || height <= 0) {
            throw new IllegalArgumentException("a picture's width and height must be positive multiples of " + f
                    + " (the VAE's scale factor), got " + width + "x" + height);
        }
        if (width > MAX_SIDE || height > MAX_SIDE) {
            throw new IllegalArgumentException("a picture's width and height must be at most " + MAX_SIDE + " pixels, got " + width + "x" + height);
        }
        return new long[] {1, sd.latentChannels(), height / f, width / f};
    }

    /**
     * Runs the sampler; returns the final latents (not divided by the VAE scaling factor), kept past the enclosing
     * scope: the caller releases them ({@code releaseReference}) when done, as {@link #generate} does.
     */
    /**
     * Which of the {@code steps} asked each model evaluation belongs to, by its noise level, for the windows counted in
     * steps (the layout's first steps, side steering): PNDM evaluates its second noise level twice (and its Runge-Kutta
     * warm-up half levels too), so an evaluation's index is not its step, and such a window covered one noise level
     * fewer than with the other samplers.
     */
    static int[] stepOfEach(double[] timesteps, int steps) {
        int[] level = new int[timesteps.length];
        for (int i = 1; i < timesteps.length; i++) level[i] = level[i - 1] + (timesteps[i] != timesteps[i - 1] ? 1 : 0);
        int levels = timesteps.length == 0 ? 1 : level[timesteps.length - 1] + 1;
        int[] step = new int[timesteps.length];
        for (int i = 0; i < timesteps.length; i++) step[i] = (int) ((long) level[i] * steps / levels);
        return step;
    }

    public static Tensor denoise(StableDiffusion sd, Request r, Tensor encodings, Tensor initialNoise,
                                 NoiseSource stepNoise, Progress progress) {
        return denoise(sd, r, encodings, null, initialNoise, stepNoise, progress);
    }

    /** The same with the first steps drawn otherwise when {@code early} is not null. */
    public static Tensor denoise(StableDiffusion sd, Request r, Tensor encodings, PromptEncoder.EarlySteps early, Tensor initialNoise,
                                 NoiseSource stepNoise, Progress progress) {
        return denoise(sd, r, encodings, early, null, 0, initialNoise, stepNoise, progress);
    }

    /** The same with the first {@code steered} steps' cross-attention biased by {@code steering} (null: none). */
    public static Tensor denoise(StableDiffusion sd, Request r, Tensor encodings, PromptEncoder.EarlySteps early,
                                 CrossAttentionBias steering, int steered, Tensor initialNoise, NoiseSource stepNoise, Progress progress) {
        Scheduler scheduler = Schedulers.create(r.scheduler(), sd.schedulerConfig);
        scheduler.setTimesteps(r.steps());
        double[] timesteps = scheduler.timesteps();
        int[] stepOf = stepOfEach(timesteps, r.steps());
        // guided: encodings are [negatives; prompts], twice the batch of latents
        boolean guided = Ops.shape(encodings)[0] == 2 * Ops.shape(initialNoise)[0];
        // the latents and the sampler's arithmetic stay in fp32 whatever the model computes in (bf16, fp16)
        Tensor latents = Scope.keep(initialNoise.to(sd.device, torch.ScalarType.Float).mul(new org.bytedeco.pytorch.Scalar(scheduler.initNoiseSigma())));
        Tensor context = encodings.to(sd.dtype);
        try {
            for (int i = 0; i < timesteps.length; i++) {
                try (Scope step = Scope.inference()) {
                    Tensor input = guided ? Ops.cat(0, latents, latents) : latents;
                    input = scheduler.scaleModelInput(input, i);
                    Tensor t = Ops.fromFloats(new float[] {(float) timesteps[i]}, 1).to(sd.device, torch.ScalarType.Float);
                    Tensor modelInput = input.to(sd.dtype);
                    boolean earlyStep = early != null && stepOf[i] < early.count();
                    Tensor prediction = CrossAttentionBias.during(stepOf[i] < steered ? steering : null,
                            () -> earlyStep ? early.predict(sd.unet, modelInput, t) : sd.unet.forward(modelInput, t, context)).to(torch.ScalarType.Float);
                    if (guided) {
                        Tensor[] uc = Ops.chunk(prediction, 2, 0);
                        prediction = Ops.addScaled(uc[0], Ops.sub(uc[1], uc[0]), r.guidance());
                    }
                    Tensor next = scheduler.step(prediction, i, latents, stepNoise);
                    // a NaN would only decode to a black picture: say where it appeared instead
                    Ops.requireFinite(next, "the result of denoising step " + (i + 1) + " of " + timesteps.length);
                    latents = Scope.replaceKept(latents, next);
                }
                progress.update("denoising", i + 1, timesteps.length, "t=" + Math.round(timesteps[i]));
            }
        } catch (RuntimeException | Error e) {
            latents.releaseReference(); // the caller never gets the running state to release
            throw e;
        }
        return latents;
    }

    /**
     * Pictures as the model's VAE gives them back (encoded to its latent means, then decoded). Every picture the model
     * draws comes out of that decoder, so this is the most of a subject that any concept can show on this model.
     */
    public static List<BufferedImage> throughVae(StableDiffusion sd, List<BufferedImage> pictures) {
        // one at a time: six 128x128 pictures at once were the fp32 demo's peak at 128 (1.21 GB; 0.97 one at a time)
        List<BufferedImage> out = new ArrayList<>();
        for (BufferedImage picture : pictures) {
            try (Scope scope = Scope.inference()) {
                out.addAll(Png.toImages(decode(sd, sd.vae.latentsFromImage(Png.toTensor(picture).to(sd.dtype)))));
            }
        }
        return out;
    }

    /** VAE-decodes latents to an image tensor [N, 3, H, W] in [0, 1]. */
    public static Tensor decode(StableDiffusion sd, Tensor latents) {
        Tensor image = Ops.requireFinite(sd.vae.imageFromLatents(latents.to(sd.dtype)).to(torch.ScalarType.Float), "the VAE's decoded picture");
        return Ops.clamp(Ops.add(Ops.mul(image, 0.5), 0.5), 0, 1);
    }
}
