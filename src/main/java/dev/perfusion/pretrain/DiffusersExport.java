package dev.perfusion.pretrain;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.perfusion.io.AtomicFiles;
import dev.perfusion.io.Safetensors;
import dev.perfusion.nn.Module;
import dev.perfusion.tensor.Ops;
import dev.perfusion.text.ClipTextModel;
import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.unet.UNet2DConditionModel;
import dev.perfusion.vae.AutoencoderKL;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The finished model as a diffusers folder, {@code model/} in the work folder: the tokenizer, the EMA text encoder
 * and UNet and the VAE in fp16, the scheduler's config, {@code model_index.json}, and {@code recipe.json}, the record
 * of how it was trained. Each is written beside the model and then moved in, so that the model folder is always whole.
 */
final class DiffusersExport {
    /** The weights file of a diffusers UNet or VAE folder. */
    static final String WEIGHTS = "diffusion_pytorch_model.safetensors";

    private final PretrainingRun run;
    private final BaseModelRecipe recipe;
    private final Path work;
    private final Path continuedFrom;
    private final VaeOrigin vaeOrigin;

    /** What a continued run does with the continued model's VAE. */
    enum VaeOrigin {
        /** The continued model's, as it was. */
        KEPT,
        /** The continued model's, trained further for the recipe's VAE and decoder steps. */
        TRAINED_FURTHER,
        /** Another, trained from scratch; the UNet's latent-facing layers start afresh. */
        NEW
    }

    /**
     * {@code continuedFrom}: the exported model that this run trains further, or null; {@code vaeOrigin}: what
     * became of its VAE.
     */
    DiffusersExport(PretrainingRun run, Path continuedFrom, VaeOrigin vaeOrigin) {
        this.run = run;
        this.recipe = run.recipe();
        this.work = run.work();
        this.continuedFrom = continuedFrom;
        this.vaeOrigin = vaeOrigin;
    }

    Path model() {
        return work.resolve("model");
    }

    /** Whether the diffusion stage's export is done. */
    boolean exported() {
        return Files.isRegularFile(model().resolve("unet").resolve(WEIGHTS));
    }

    /**
     * A run whose model is exported, asked for again: only with the recipe it was trained on, since nothing more trains
     * in its folder (more steps asked of a finished run would be quietly not trained).
     */
    void checkFinishedRecipe() throws IOException {
        ObjectMapper json = new ObjectMapper();
        JsonNode then = json.readTree(model().resolve("recipe.json").toFile()).path("recipe");
        List<String> differ = BaseModelRecipe.differences(then.toString(), json.valueToTree(recipe));
        if (!differ.isEmpty()) {
            throw new IllegalArgumentException(work + ": its run is finished, its model in " + model() + ", with another recipe ("
                    + String.join("; ", differ) + "); nothing more trains in this folder: to train that model further, give --continue-from "
                    + model() + " and another --work folder");
        }
    }

    /** Exports the trained text encoder and UNet with the tokenizer and the VAE stage's VAE; returns the model folder. */
    Path export(ClipTokenizer tokenizer, ClipTextModel text, UNet2DConditionModel unet, double loss) throws IOException {
        Path target = model(), staging = work.resolve("model.partial");
        deleteTree(staging);
        Files.createDirectories(staging);
        tokenizer.save(staging.resolve("tokenizer"));
        if (recipe.frozenTextEncoder()) {
            // the frozen tower exactly as the contrastive stage left it (text_projection too), and its image tower beside it
            copyFiles(work.resolve(ContrastiveStage.TEXT_FOLDER), staging.resolve("text_encoder"));
            copyFiles(work.resolve(ContrastiveStage.IMAGE_FOLDER), staging.resolve("image_encoder"));
        } else {
            writeComponent(staging.resolve("text_encoder"), recipe.textEncoderJson(tokenizer.vocabSize(), tokenizer.bosId(), tokenizer.eosId(), tokenizer.padId()),
                    "model.safetensors", text, Safetensors.StoredType.F16);
        }
        writeComponent(staging.resolve("unet"), recipe.unetJson(), WEIGHTS, unet, Safetensors.StoredType.F16);
        Path vaeDir = work.resolve("vae");
        ObjectNode vaeJson = (ObjectNode) new ObjectMapper().readTree(vaeDir.resolve("config.json").toFile());
        AutoencoderKL vae = AutoencoderKL.load(vaeDir, Ops.cpu(), ScalarType.Float);
        writeComponent(staging.resolve("vae"), vaeJson, WEIGHTS, vae, Safetensors.StoredType.F16);
        Files.createDirectories(staging.resolve("scheduler"));
        writeJson(staging.resolve("scheduler/scheduler_config.json"), recipe.schedulerJson());
        writeJson(staging.resolve("model_index.json"), recipe.modelIndexJson());
        writeJson(staging.resolve("recipe.json"), recipeRecord(loss, text, unet, vae));
        AtomicFiles.replaceFolder(staging, target);
        run.losses().plot();
        return target;
    }

    /** Puts the fine-tuned decoder (fp16) into the exported model, in place of the first stage's; nothing until both exist. */
    void installDecoder() throws IOException {
        Path model = model(), tuned = work.resolve("vae-decoder");
        if (!Files.isRegularFile(tuned.resolve(WEIGHTS)) || !Files.isDirectory(model)) return;
        AutoencoderKL vae = AutoencoderKL.load(tuned, Ops.cpu(), ScalarType.Float);
        Path staging = work.resolve("vae.partial");
        deleteTree(staging);
        writeComponent(staging, (ObjectNode) new ObjectMapper().readTree(tuned.resolve("config.json").toFile()), WEIGHTS, vae, Safetensors.StoredType.F16);
        deleteTree(model.resolve("vae"));
        Files.move(staging, model.resolve("vae"));
        ObjectNode record = (ObjectNode) new ObjectMapper().readTree(model.resolve("recipe.json").toFile());
        record.put("decoder_fine_tuned", true);
        if (record.get("recipe") instanceof ObjectNode exported) { // a decoder trained anew after the export says its own recipe
            ObjectNode decoder = StageRecord.DECODER.of(run.recipe());
            for (String part : StageRecord.DECODER.parts()) {
                if (decoder.has(part)) exported.set(part, decoder.get(part));
                else exported.remove(part);
            }
        }
        record.put("seconds_total", run.losses().totalSeconds());
        writeJson(model.resolve("recipe.json"), record);
        run.losses().plot();
        run.progress().message("installed the fine-tuned decoder in " + model.resolve("vae"));
    }

    /**
     * The continued model with the decoder stage's decoder (fp16) in place of its own: every other part as it was,
     * its record under {@code continued_from} of this run's. Returns the model folder.
     */
    Path exportWithNewDecoder(double loss) throws IOException {
        Path tuned = work.resolve("vae-decoder"), staging = work.resolve("model.partial");
        deleteTree(staging);
        Files.createDirectories(staging);
        try (var parts = Files.list(continuedFrom)) {
            for (Path part : (Iterable<Path>) parts::iterator) {
                String name = part.getFileName().toString();
                if (Files.isDirectory(part) && !name.equals("vae")) copyFiles(part, staging.resolve(name));
                else if (Files.isRegularFile(part) && !name.equals("recipe.json")) Files.copy(part, staging.resolve(name));
            }
        }
        AutoencoderKL vae = AutoencoderKL.load(tuned, Ops.cpu(), ScalarType.Float);
        writeComponent(staging.resolve("vae"), (ObjectNode) new ObjectMapper().readTree(tuned.resolve("config.json").toFile()), WEIGHTS, vae, Safetensors.StoredType.F16);
        ObjectNode record = recipeRecord(loss);
        record.put("what", "the continued model with its VAE decoder trained further alone (`perfusion pretrain --continue-from MODEL --decoder-only`), "
                + "on its encoder's latents; every other part is the continued model's");
        record.remove("parameters");
        if (Double.isNaN(loss)) record.remove("final_loss_smoothed"); // exported again, not trained: losses.csv has its curve
        writeJson(staging.resolve("recipe.json"), record);
        AtomicFiles.replaceFolder(staging, model());
        run.losses().plot();
        return model();
    }

    /** A diffusers component folder: its config and its module's weights. */
    static void writeComponent(Path dir, ObjectNode config, String weightsFile, Module module, Safetensors.StoredType type) throws IOException {
        Files.createDirectories(dir);
        writeJson(dir.resolve("config.json"), config);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        module.namedParameters().forEach((name, p) -> tensors.put(name, p.t().detach()));
        Safetensors.write(dir.resolve(weightsFile), tensors, Map.of("format", "pt"), type);
    }

    private ObjectNode recipeRecord(double loss, Module... modules) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode n = json.createObjectNode();
        n.put("what", "perfusion world base model: trained from scratch by `perfusion pretrain` on the synthetic world");
        n.set("recipe", json.valueToTree(recipe));
        n.put("final_loss_smoothed", loss);
        n.put("seconds_this_run", run.seconds());
        n.put("seconds_total", run.losses().totalSeconds());
        long params = 0;
        for (Module m : modules) params += m.parameterCount();
        n.put("parameters", params);
        n.put("machine", System.getProperty("os.arch") + ", " + Runtime.getRuntime().availableProcessors() + " cores");
        // a continued run keeps the continued model's VAE, and the recipe's VAE steps are not this run's, unless this says so
        if (vaeOrigin == VaeOrigin.TRAINED_FURTHER) n.put("vae", "the continued model's, trained further for the recipe's VAE and decoder steps");
        if (vaeOrigin == VaeOrigin.NEW) {
            n.put("vae", "a new one, trained from scratch for the recipe's VAE and decoder steps; the continued UNet's latent-facing layers (conv_in, conv_out) started afresh");
        }
        if (continuedFrom != null) n.set("continued_from", json.readTree(continuedFrom.resolve("recipe.json").toFile()));
        return n;
    }

    /**
     * The files of {@code from} as a new folder {@code to}, whole or not at all: a stop while copying left a part
     * (a VAE folder with only its config) that later runs took as present and did not copy again.
     */
    static void copyFolder(Path from, Path to) throws IOException {
        Path parent = Files.createDirectories(to.toAbsolutePath().getParent());
        Path staging = Files.createTempDirectory(parent, "." + to.getFileName() + "-");
        copyFiles(from, staging);
        AtomicFiles.replaceFolder(staging, to);
    }

    static void copyFiles(Path from, Path to) throws IOException {
        Files.createDirectories(to);
        try (var files = Files.list(from)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                if (Files.isRegularFile(f)) Files.copy(f, to.resolve(f.getFileName().toString()));
            }
        }
    }

    private static void writeJson(Path file, ObjectNode node) throws IOException {
        AtomicFiles.write(file, new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsBytes(node));
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) return;
        try (var paths = Files.walk(dir)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) Files.delete(p);
        }
    }
}
