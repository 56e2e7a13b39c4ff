package dev.perfusion.cli;

import dev.perfusion.io.layout.ModelInputException;
import dev.perfusion.io.layout.ModelSource;
import dev.perfusion.io.layout.ResolvedModel;
import dev.perfusion.perfusion.CovarianceCache;
import dev.perfusion.perfusion.CovarianceFile;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.util.Progress;
import dev.perfusion.world.Bundled;
import dev.perfusion.world.WorldCorpus;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;

/** The options every command that loads a model shares. */
final class ModelOptions {
    @Option(names = "--model", paramLabel = "PATH",
            description = "A diffusers folder or a single-file checkpoint: .safetensors, or a PyTorch .ckpt/.pt (read without running"
                    + " it) (default: the bundled world model, models/world).")
    Path model;

    @Mixin SourceOptions source;

    /** Where the model runs. */
    enum DeviceName { CPU, CUDA }

    @Option(names = "--device", defaultValue = "cpu", paramLabel = "DEVICE", converter = Choices.Device.class,
            completionCandidates = Choices.Device.class,
            description = "Where the model runs: ${COMPLETION-CANDIDATES}; on cuda the weights are fp16 (default: ${DEFAULT-VALUE}).")
    DeviceName device;

    /** What the UNet and VAE compute in; {@code AUTO} is fp16 on cuda and fp32 on the CPU. */
    enum PrecisionName { AUTO, FP32, BF16, FP16 }

    @Option(names = "--precision", defaultValue = "auto", converter = Choices.Precision.class, completionCandidates = Choices.Precision.class,
            description = "What the UNet and VAE compute in: ${COMPLETION-CANDIDATES}; auto is fp32 on the CPU and fp16 on cuda. bf16 draws "
                    + "about twice as fast on CPUs with AVX512-BF16 or AMX; the text encoder, the latents and the sampler stay fp32. "
                    + "Training runs the UNet in it too and keeps what it learns, its gradients and its loss in fp32 (default: ${DEFAULT-VALUE}).")
    PrecisionName precision;

    @Option(names = "--clip-skip", defaultValue = "0",
            description = "Use the text encoder's k-th layer from the end (1 = penultimate, as some SD 2.x tools do) (default: ${DEFAULT-VALUE}).")
    int clipSkip;

    StableDiffusion load(Progress progress) throws IOException {
        StableDiffusion sd;
        try {
            sd = StableDiffusion.load(modelPath(), options(), device(), dtype(), progress);
        } catch (ModelInputException e) {
            throw Flags.of(e);
        }
        Flags.named("--clip-skip", () -> sd.setClipSkip(clipSkip));
        return sd;
    }

    /**
     * C^-1 of the loaded model {@code sd} from {@code captions} captions, from the cache (computed once): the world's
     * corpus for a world base model, the generic one for any other.
     */
    Tensor covarianceInverse(StableDiffusion sd, int captions, Progress progress) throws IOException {
        return covariance(sd, captions, progress).cInv();
    }

    /** The same with what it was computed from, as a concept file records it. */
    CovarianceFile.Loaded covariance(StableDiffusion sd, int captions, Progress progress) throws IOException {
        return CovarianceCache.inverseWithProvenance(sd, WorldCorpus.forModel(modelPath()), CovarianceCache.defaultDir(), captions, progress);
    }

    /** The model's configs, tokenizer folder and weight headers, without reading weights: enough to check inputs against. */
    ResolvedModel resolve() throws IOException {
        return source.resolve(modelPath());
    }

    /** The tokenizer the model reads prompts with; a missing tokenizer folder is a usage error naming the flag. */
    static dev.perfusion.text.ClipTokenizer tokenizer(ResolvedModel resolved) throws java.io.IOException {
        try {
            return resolved.tokenizer();
        } catch (ModelInputException e) {
            throw Flags.of(e);
        }
    }

    private ModelSource.Options options() {
        return source.options();
    }

    /** --model, else the bundled model, which must then be there. */
    Path modelPath() throws IOException {
        if (model != null) return model;
        Path bundled = Bundled.model();
        if (!java.nio.file.Files.isRegularFile(bundled.resolve("model_index.json"))) {
            throw new IOException("no --model given and the bundled model is missing at " + bundled
                    + " (it ships with the project; `perfusion pretrain` trains it again)");
        }
        return bundled;
    }

    Device device() {
        return torchDevice(device);
    }

    torch.ScalarType dtype() {
        return dtype(device, precision);
    }

    /** Where the model runs, or an error saying why it cannot run there. */
    static Device torchDevice(DeviceName device) {
        return switch (device) {
            case CPU -> new Device(torch.DeviceType.CPU);
            case CUDA -> {
                if (torch.cuda_device_count() < 1) {
                    throw new IllegalArgumentException("--device cuda: libtorch sees no CUDA device (build with "
                            + "'mvn -Pgpu package' for the CUDA natives, and check the NVIDIA driver)");
                }
                yield new Device(torch.DeviceType.CUDA);
            }
        };
    }

    /** Refuses a precision the device cannot compute in, before anything is loaded. */
    void checkPrecision() {
        dtype();
    }

    /** What the UNet and VAE compute in: {@code precision}, where {@code AUTO} is fp16 on cuda and fp32 on the CPU. */
    static torch.ScalarType dtype(DeviceName device, PrecisionName precision) {
        return switch (precision) {
            case AUTO -> device == DeviceName.CUDA ? torch.ScalarType.Half : torch.ScalarType.Float;
            case FP32 -> torch.ScalarType.Float;
            case BF16 -> torch.ScalarType.BFloat16;
            case FP16 -> {
                if (device != DeviceName.CUDA) {
                    throw new IllegalArgumentException("--precision fp16 needs --device cuda: libtorch's CPU kernels have no fast fp16 path; use bf16");
                }
                yield torch.ScalarType.Half;
            }
        };
    }
}
