package dev.perfusion.vae;

import dev.perfusion.io.Safetensors;
import dev.perfusion.nn.Conv2d;
import dev.perfusion.nn.Module;
import dev.perfusion.nn.Weights;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/**
 * diffusers' {@code AutoencoderKL} (v0.27.2), the Stable Diffusion VAE. Parameters carry diffusers' state-dict names
 * ({@code encoder.down_blocks.0.resnets.0.norm1.weight}, ...), so {@code vae/diffusion_pytorch_model.safetensors}
 * loads with {@code Weights.load(model, file, "", ...)}. Images are NCHW in [-1, 1]; every operation is out of place.
 */
public final class AutoencoderKL extends Module {
    /** diffusers builds every VAE GroupNorm with eps 1e-6, whatever the config says. */
    static final double NORM_EPS = 1e-6;
    private static final double LOGVAR_MIN = -30.0;
    private static final double LOGVAR_MAX = 20.0;

    private final VaeConfig config;
    private final Encoder encoder;
    private final Decoder decoder;
    private final Conv2d quantConv;
    private final Conv2d postQuantConv;

    private AutoencoderKL(VaeConfig config) {
        this.config = config;
        this.encoder = child("encoder", new Encoder(config));
        this.decoder = child("decoder", new Decoder(config));
        int moments = 2 * config.latentChannels();
        this.quantConv = config.useQuantConv() ? child("quant_conv", new Conv2d(moments, moments, 1, 1, 0)) : null;
        this.postQuantConv = config.usePostQuantConv()
                ? child("post_quant_conv", new Conv2d(config.latentChannels(), config.latentChannels(), 1, 1, 0))
                : null;
        namedParameters(); // gives every parameter its full name for "never loaded" errors
    }

    /** The module tree with its parameter shapes; no weights until {@code Weights.load} or {@code Weights.initRandom}. */
    public static AutoencoderKL create(VaeConfig config) {
        return new AutoencoderKL(config);
    }

    /** Builds from a diffusers {@code vae} folder: {@code config.json} and {@code diffusion_pytorch_model.safetensors}. */
    public static AutoencoderKL load(Path folder, Device device, torch.ScalarType dtype) throws IOException {
        AutoencoderKL model = create(VaeConfig.load(folder.resolve("config.json")));
        Path weights = folder.resolve("diffusion_pytorch_model.safetensors");
        if (!Files.isRegularFile(weights)) {
            List<String> present;
            try (Stream<Path> files = Files.list(folder)) {
                present = files.map(p -> p.getFileName().toString()).sorted().toList();
            }
            throw new IOException("no VAE weights at " + weights + " (only safetensors is supported; the folder holds "
                    + present + ")");
        }
        Weights.load(model, Safetensors.open(weights), "", device, dtype, "VAE");
        return model;
    }

    public VaeConfig config() { return config; }

    /** The posterior of an NCHW image in [-1, 1]: mean and log-variance [B, latent_channels, H/f, W/f]. */
    public DiagonalGaussian encode(Tensor image) {
        requireChannels(image, config.inChannels(), "image");
        Tensor moments = encoder.forward(image);
        if (quantConv != null) moments = quantConv.forward(moments);
        moments = asNchw(moments);
        Tensor[] parts = Ops.chunk(moments, 2, 1);
        return new DiagonalGaussian(parts[0], Ops.clamp(parts[1], LOGVAR_MIN, LOGVAR_MAX));
    }

    /** Raw decoder output for unscaled latents z (not clamped, not denormalised). */
    public Tensor decode(Tensor z) {
        requireChannels(z, config.latentChannels(), "latents");
        Tensor h = postQuantConv == null ? z : postQuantConv.forward(z);
        return asNchw(decoder.forward(h));
    }

    /** An output as the caller expects it, in NCHW memory, also when the weights are stored channels-last (the UNet it feeds trains NCHW). */
    private Tensor asNchw(Tensor output) {
        return storesChannelsLast() ? output.contiguous() : output;
    }

    /** The UNet's latents for an image: the posterior mean times scaling_factor. */
    public Tensor latentsFromImage(Tensor image) {
        return Ops.mul(encode(image).mean(), config.scalingFactor());
    }

    /** The raw image (about [-1, 1]) for UNet latents: decode(latents / scaling_factor). */
    public Tensor imageFromLatents(Tensor latents) {
        return decode(Ops.div(latents, config.scalingFactor()));
    }

    private static void requireChannels(Tensor x, int channels, String what) {
        if (x.dim() != 4 || Ops.shape(x)[1] != channels) {
            throw new IllegalArgumentException("VAE " + what + " must be NCHW with " + channels + " channels, got "
                    + Ops.shapeString(x));
        }
    }
}
