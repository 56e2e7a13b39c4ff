package dev.perfusion.io.layout;

import dev.perfusion.io.AtomicFiles;
import dev.perfusion.io.Safetensors;
import dev.perfusion.io.StateDict;
import dev.perfusion.tensor.Ops;
import dev.perfusion.util.Progress;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * A resolved model written out again (what {@code convert} does), reading and writing one tensor at a time, so that
 * a multi-gigabyte model is never held whole:
 * <ul>
 * <li>{@link #singleFile}: one original-layout (LDM) .safetensors file: the rename tables run backwards
 * ({@link BlockTable#ldmName}), the VAE's attention projections become 1x1 kernels again, and the text encoder is
 * stored in the transformers layout ({@code cond_stage_model.transformer.text_model.*}), which SD 1.x uses and this
 * loader also reads for SD 2.x.</li>
 * <li>{@link #diffusersFolder}: model_index.json, each component's config and safetensors weights, the tokenizer
 * when the model has one; built in a hidden folder beside the target and renamed into place when whole.</li>
 * </ul>
 * Either holds the weights the model was loaded with (a file's EMA UNet when that was chosen).
 */
public final class ModelExport {
    private ModelExport() {}

    /** What was written: the target, its tensors and bytes. */
    public record Written(Path target, int tensors, long bytes) {}

    /** The prefix and the rename of each component in the original layout; the VAE's attention weights as kernels. */
    private record Component(String what, StateDict weights, String prefix, Function<String, BlockTable.Renamed> rename) {}

    public static Written singleFile(ResolvedModel m, Path target, Safetensors.StoredType type, Progress progress) throws IOException {
        refuseSource(m, target);
        BlockTable unet = LdmUnet.blocks(m.unetConfig()), vae = LdmVae.blocks(m.vaeConfig());
        List<Component> components = List.of(
                new Component("UNet", m.unetWeights(), LdmUnet.PREFIX, unet::ldmName),
                new Component("VAE", m.vaeWeights(), LdmVae.PREFIX, vae::ldmName),
                new Component("text encoder", m.textEncoderWeights(), LdmTextEncoder.CLIP_PREFIX, name -> new BlockTable.Renamed(null, name)));
        List<Safetensors.Pending> pending = new ArrayList<>();
        int total = components.stream().mapToInt(c -> c.weights().keys().size()).sum();
        for (Component c : components) {
            for (String name : c.weights().keys()) {
                BlockTable.Renamed r = c.rename().apply(name);
                if (r == null) {
                    throw new IllegalArgumentException(c.weights().describe(name) + ": the " + c.what() + " parameter '" + name
                            + "' has no name in the original layout (its config has no block for it)");
                }
                long[] shape = c.weights().shape(name);
                boolean kernel = r.block() != null && r.block().kind() == BlockTable.Kind.VAE_ATTENTION && shape.length == 2;
                long[] stored = kernel ? new long[] {shape[0], shape[1], 1, 1} : shape;
                int index = pending.size() + 1;
                pending.add(new Safetensors.Pending(c.prefix() + r.name(), stored, () -> {
                    progress.update("converting", index, total, "");
                    Tensor t = converted(c.weights(), name, type);
                    return kernel ? t.reshape(stored) : t;
                }));
            }
        }
        Safetensors.write(target, pending, metadata(m), type);
        return new Written(target, pending.size(), Files.size(target));
    }

    public static Written diffusersFolder(ResolvedModel m, Path target, Safetensors.StoredType type, Progress progress) throws IOException {
        refuseSource(m, target);
        if (Files.exists(target)) {
            throw new IOException(target + " exists: give a new folder name (a converted model is not written over another)");
        }
        Path parent = target.toAbsolutePath().getParent();
        Files.createDirectories(parent);
        Path staging = Files.createTempDirectory(parent, "." + target.getFileName() + ".partial-");
        AtomicFiles.unfinished(staging);
        try {
            if (Files.getFileStore(staging).supportsFileAttributeView(java.nio.file.attribute.PosixFileAttributeView.class)) {
                // a folder any tool would make (the temporary one is private)
                Files.setPosixFilePermissions(staging, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
            }
            ModelConfigs.writeFiles(m.configFolder(), m.family(), staging);
            // the tokenizer as the model reads prompts: a single file's family's special tokens, not the vocabulary folder's
            if (m.tokenizerDir().isPresent()) ModelConfigs.writeTokenizer(m.tokenizerDir().get(), m.configFolder(), m.family(), staging.resolve("tokenizer"));
            int total = m.unetWeights().keys().size() + m.vaeWeights().keys().size() + m.textEncoderWeights().keys().size();
            int[] done = {0};
            Map<String, StateDict> files = new LinkedHashMap<>();
            files.put("unet/diffusion_pytorch_model.safetensors", m.unetWeights());
            files.put("vae/diffusion_pytorch_model.safetensors", m.vaeWeights());
            files.put("text_encoder/model.safetensors", m.textEncoderWeights());
            int tensors = 0;
            for (Map.Entry<String, StateDict> f : files.entrySet()) {
                List<Safetensors.Pending> pending = new ArrayList<>();
                for (String name : f.getValue().keys()) {
                    pending.add(new Safetensors.Pending(name, f.getValue().shape(name), () -> {
                        progress.update("converting", ++done[0], total, "");
                        return converted(f.getValue(), name, type);
                    }));
                }
                Safetensors.write(staging.resolve(f.getKey()), pending, metadata(m), type);
                tensors += pending.size();
            }
            try {
                Files.move(staging, target, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(staging, target);
            }
            return new Written(target, tensors, size(target));
        } finally {
            deleteTree(staging);
            AtomicFiles.finished(staging);
        }
    }

    /** The tensor in the stored type; one that overflows fp16 (a value beyond 65504) is refused, naming it. */
    private static Tensor converted(StateDict weights, String name, Safetensors.StoredType type) {
        Tensor value = weights.get(name);
        Tensor c = value.to(type.scalarType());
        if (!Ops.allFinite(c) && Ops.allFinite(value)) {
            throw new IllegalArgumentException(weights.describe(name) + " holds values beyond what " + type
                    + " can represent (largest magnitude " + Ops.maxAbs(value) + "); convert to fp32 instead");
        }
        return c;
    }

    private static Map<String, String> metadata(ResolvedModel m) {
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", "pt");
        meta.put("converted_from", String.valueOf(m.source().getFileName()));
        meta.put("family", m.family());
        if (!m.notes().isEmpty()) meta.put("weights", String.join("; ", m.notes()));
        return meta;
    }

    private static void refuseSource(ResolvedModel m, Path target) throws IOException {
        if (Files.exists(target) && Files.isSameFile(target, m.source())) {
            throw new IOException(target + " is the model being converted: give another output");
        }
    }

    private static long size(Path dir) throws IOException {
        try (var files = Files.walk(dir)) {
            long total = 0;
            for (Path p : (Iterable<Path>) files::iterator) if (Files.isRegularFile(p)) total += Files.size(p);
            return total;
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) return;
        try (var paths = Files.walk(dir)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }

    /** The two outputs {@code convert} writes. */
    public enum Target { SINGLE_FILE, DIFFUSERS_FOLDER }

    /** A name ending in .safetensors is a single file; anything else a folder. */
    public static Target targetOf(Path out) {
        return out.getFileName().toString().toLowerCase(java.util.Locale.ROOT).endsWith(".safetensors") ? Target.SINGLE_FILE
                : Target.DIFFUSERS_FOLDER;
    }
}
