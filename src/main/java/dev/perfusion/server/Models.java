package dev.perfusion.server;

import dev.perfusion.io.FileStamp;
import dev.perfusion.io.layout.ModelInputException;
import dev.perfusion.io.layout.ModelSource;
import dev.perfusion.io.layout.ResolvedModel;
import dev.perfusion.perfusion.CovarianceCache;
import dev.perfusion.perfusion.CovarianceFile;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.tensor.Scope;
import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.util.Progress;
import dev.perfusion.world.WorldCorpus;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;

/**
 * The models folder: what it holds that the engine can load (diffusers folders, and single-file checkpoints whose
 * family is recognised), and the one model loaded at a time, with its input covariance. Loading happens on the
 * worker thread only.
 */
final class Models {
    /** A model of the folder, as the page lists it. */
    record Entry(String name, String layout, String family) {}

    /** The model in memory and where it came from; C^-1 is computed (or read from the cache) when a concept first needs it. */
    static final class Loaded {
        final String name;
        final Path path;
        final StableDiffusion sd;
        private CovarianceFile.Loaded cInv;

        Loaded(String name, Path path, StableDiffusion sd) {
            this.name = name;
            this.path = path;
            this.sd = sd;
        }

        /** C^-1 of the text encoder from the default caption count, from the cache (what generate and train use), and its provenance. */
        CovarianceFile.Loaded covariance(Progress progress) throws IOException {
            if (cInv == null) {
                cInv = CovarianceCache.inverseWithProvenance(sd, WorldCorpus.forModel(path), CovarianceCache.defaultDir(),
                        CovarianceCache.DEFAULT_CAPTIONS, progress);
            }
            return cInv;
        }
    }

    private final Folder folder;
    private final Device device;
    private final torch.ScalarType dtype;
    /** What each file of the folder is, by name and modification time (checking reads the file's header). */
    private final Map<String, Recognised> recognised = new ConcurrentHashMap<>();
    private final Map<String, ClipTokenizer> tokenizers = new ConcurrentHashMap<>(); // by name and stamp
    private Loaded loaded;

    private record Recognised(long modified, Entry entry) {}

    Models(Folder folder, Device device, torch.ScalarType dtype) {
        this.folder = folder;
        this.device = device;
        this.dtype = dtype;
    }

    /** The models of the folder, by name. */
    List<Entry> list() throws IOException {
        List<Entry> out = new ArrayList<>();
        try (Stream<Path> s = Files.list(folder.root())) {
            for (Path p : s.sorted().toList()) {
                String name = p.getFileName().toString();
                if (!Folder.validName(name) || !folder.inside(name)) continue;
                Entry e = recognise(name, p);
                if (e != null) out.add(e);
            }
        }
        return out;
    }

    /** The model the page selects first: {@code world} (the bundled model) when the folder has it, else the first. */
    String defaultName() throws IOException {
        List<Entry> all = list();
        return all.stream().map(Entry::name).filter("world"::equals).findFirst()
                .orElse(all.isEmpty() ? null : all.get(0).name());
    }

    /** The folder's model of that name, or a 400/404. */
    Path path(String name) throws IOException {
        Path p = folder.resolve(name);
        if (!Files.exists(p) || recognise(name, p) == null) throw ApiException.notFound("no model '" + name + "' in the models folder");
        return p;
    }

    /** The tokenizer of a model (with no weights read), to check words before a job is queued. */
    ClipTokenizer tokenizer(String name) throws IOException {
        String key = name + "\n" + FileStamp.of(path(name));
        ClipTokenizer t = tokenizers.get(key);
        if (t == null) {
            ResolvedModel model = resolved(name);
            try {
                t = model.tokenizer();
            } catch (ModelInputException e) {
                throw ApiException.badRequest("model '" + name + "': " + e.getMessage());
            }
            tokenizers.keySet().removeIf(k -> k.startsWith(name + "\n"));
            tokenizers.put(key, t);
        }
        return t;
    }

    /** A model's configs (no weights read), to check a request against the model before its job is queued. */
    ResolvedModel resolved(String name) throws IOException {
        Path p = path(name);
        try {
            return ModelSource.resolve(p, ModelSource.Options.defaults());
        } catch (ModelInputException e) {
            throw ApiException.badRequest("model '" + name + "': " + e.getMessage());
        }
    }

    /** The model of that name in memory, loading it (and letting the one before go) when another was loaded. */
    synchronized Loaded load(String name, Progress progress) throws IOException {
        Path p = path(name);
        if (loaded != null && loaded.name.equals(name)) {
            if (loaded.sd.filesUnchanged()) return loaded;
            // replaced on disk (a pretrain export, a convert): its weights, hashes and C^-1 are read again
            progress.message("model '" + name + "' changed on disk since it was read; reading it again");
        }
        if (loaded != null) {
            // the model before is freed before the next one is read: left to the GC, every switch between two SD
            // models added one's weights to the process (the bundled models: 444 -> 640 MB over 16 switches)
            loaded = null;
            Scope.freeUnreachable();
        }
        loaded = new Loaded(name, p, StableDiffusion.load(p, ModelSource.Options.defaults(), device, dtype, progress));
        return loaded;
    }

    private Entry recognise(String name, Path p) {
        try {
            long modified = Files.getLastModifiedTime(p).toMillis();
            Recognised r = recognised.get(name);
            if (r != null && r.modified() == modified) return r.entry();
            Entry e = null;
            boolean folderModel = Files.isRegularFile(p.resolve("model_index.json"));
            boolean singleFile = Files.isRegularFile(p) && (name.endsWith(".safetensors") || name.endsWith(".ckpt"));
            if (folderModel || singleFile) {
                try {
                    var resolved = ModelSource.resolve(p, ModelSource.Options.defaults());
                    e = new Entry(name, folderModel ? "diffusers" : "single file", resolved.family() != null ? resolved.family() : "custom");
                } catch (IOException | RuntimeException notAModel) {
                    e = null; // another kind of file (a judge's weights, a concept): not listed
                }
            }
            recognised.put(name, new Recognised(modified, e));
            return e;
        } catch (IOException e) {
            return null;
        }
    }
}
