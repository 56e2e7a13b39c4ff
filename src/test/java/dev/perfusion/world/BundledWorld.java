package dev.perfusion.world;

import dev.perfusion.io.Safetensors;
import dev.perfusion.io.layout.ModelSource;
import dev.perfusion.perfusion.CovarianceCache;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.util.Progress;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;

/** The bundled world model as the demo runs it (CPU, fp32) with a quick input covariance, for training tests. */
public record BundledWorld(StableDiffusion sd, Tensor cInv) {
    /** Loads the model; its C^-1 from 300 world-model captions, cached in {@code cache}. */
    public static BundledWorld load(Path cache) throws IOException {
        StableDiffusion sd = StableDiffusion.load(Bundled.model(), ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float, Progress.NONE);
        return new BundledWorld(sd, CovarianceCache.inverseFor(sd, WorldCorpus.world(), cache, 300, Progress.NONE));
    }

    /** A copy of the bundled model's folder at {@code target}, every file as shipped (a model of one's own, to change); returns it. */
    public static Path copyOfModel(Path target) throws IOException {
        Path source = Bundled.model();
        try (Stream<Path> files = Files.walk(source)) {
            for (Path p : files.toList()) {
                Path to = target.resolve(source.relativize(p).toString());
                if (Files.isDirectory(p)) Files.createDirectories(to);
                else Files.copy(p, to);
            }
        }
        return target;
    }

    /** Writes the UNet of a copy made by {@link #copyOfModel} again with every weight scaled: another model under the same name. */
    public static void rewriteUNet(Path model, double scale) throws IOException {
        Path unet = model.resolve("unet/diffusion_pytorch_model.safetensors");
        Safetensors weights = Safetensors.open(unet);
        try (Scope s = Scope.inference()) {
            Map<String, Tensor> scaled = new LinkedHashMap<>();
            for (String name : weights.keys()) scaled.put(name, weights.get(name).mul(new Scalar(scale)));
            Safetensors.write(unet, scaled, weights.metadata(), Safetensors.StoredType.F16);
        }
    }
}
