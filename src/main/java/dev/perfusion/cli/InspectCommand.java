package dev.perfusion.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.perfusion.io.Safetensors;
import dev.perfusion.io.StateDict;
import dev.perfusion.io.layout.CheckpointLayout;
import dev.perfusion.io.layout.RenamedStateDict;
import dev.perfusion.io.layout.ResolvedModel;
import dev.perfusion.io.layout.WeightFile;
import dev.perfusion.io.pickle.TorchCheckpoint;
import dev.perfusion.perfusion.AppliedConcepts;
import dev.perfusion.perfusion.ConceptFile;
import dev.perfusion.perfusion.ConceptSummary;
import dev.perfusion.perfusion.CovarianceCache;
import dev.perfusion.perfusion.EmbeddingDrift;
import dev.perfusion.perfusion.GateProfile;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;

@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = {"Show a model, a concept file, or its gate per token.",
                "A model (a diffusers folder or a checkpoint; nothing is run or loaded): its family, layout, each component's"
                        + " parameters and dtypes, and which of a checkpoint's EMA and non-EMA weights are used."
                        + " Concept files without --prompt: their metadata and sizes. With --prompt the model is loaded (--model, the bundled one by default) and each token position (BOS, every word, "
                        + "EOS, padding) is printed with s, how much its encoding resembles the concept's i*, and g, how far the gate "
                        + "opens there at the concept's default beta and tau: one column pair per concept. It tells why a concept "
                        + "does not show (s low at its word) or takes over the prompt (s high elsewhere)."})
final class InspectCommand implements Callable<Integer> {
    @Parameters(paramLabel = "FILE", arity = "1..*", description = "Concept files (.safetensors) written by 'train', or one model:"
            + " a diffusers folder, a .safetensors file or a PyTorch checkpoint (read with --config, --family, --non-ema as --model is).")
    List<Path> files;
    @Option(names = "--prompt", paramLabel = "TEXT", description = "Show the gate on each token of this prompt (use the concepts' words in it).")
    String prompt;
    @Option(names = "--json", description = "With --prompt: print the profile as JSON "
            + "({\"tokens\": [{\"position\", \"token\", \"s\": [...], \"g\": [...], \"concept_word\"}]}).")
    boolean json;
    @Mixin ModelOptions model;

    @Override
    public Integer call() throws Exception {
        if (files.size() == 1 && !isConcept(files.get(0))) {
            if (prompt != null || json) throw new IllegalArgumentException("--prompt and --json show concepts' gates: give concept files");
            model(files.get(0));
            return 0;
        }
        List<ConceptFile> concepts = new ArrayList<>();
        for (Path f : files) concepts.add(FileChecks.concept(f));
        if (prompt == null) {
            if (json) throw new IllegalArgumentException("--json prints the gate profile of a prompt: give --prompt");
            for (int i = 0; i < files.size(); i++) {
                if (i > 0) System.out.println();
                printMetadata(files.get(i), concepts.get(i));
            }
            return 0;
        }
        // progress goes to stderr where stdout is JSON for a script
        TerminalProgress progress = new TerminalProgress(json ? System.err : System.out);
        StableDiffusion sd = model.load(progress);
        // the gate reads only the text encoder, but the profile installs each edit: a UNet of other widths or depth cannot take it
        for (int i = 0; i < concepts.size(); i++) {
            concepts.get(i).checkShapes(files.get(i), sd.textEncoder.config().hiddenSize(), AppliedConcepts.layerDims(sd));
            try {
                concepts.get(i).checkMadeFor(files.get(i), sd.unetHash(), sd.textEncoderHash(), sd.clipSkip());
            } catch (ConceptFile.MadeForAnotherModel e) { // still shown: how it reads on this model can be the question
                System.err.println("warning: " + e.getMessage() + "; s and g below are this model's, not what it was trained with");
            }
        }
        Tensor cInv = model.covarianceInverse(sd, CovarianceCache.DEFAULT_CAPTIONS, progress);
        GateProfile profile = GateProfile.of(sd, cInv, concepts, prompt);
        if (json) {
            System.out.println(toJson(profile));
            return 0;
        }
        print(profile, System.out);
        EmbeddingDrift.report(sd.textEncoder, sd.tokenizer, concepts).forEach(System.out::println);
        return 0;
    }

    /** Whether {@code file} is to be read as a concept: a safetensors file (or what the concept reader names as misplaced). */
    private static boolean isConcept(Path file) throws IOException {
        if (Files.isDirectory(file)) return !Files.isRegularFile(file.resolve("model_index.json"));
        if (!Files.isRegularFile(file) || WeightFile.isTorch(file)) return !Files.isRegularFile(file);
        return ConceptFile.FORMAT.equals(Safetensors.open(file).metadata().get("format"));
    }

    /** A model's layout, family, components and weights; a safetensors file that is neither model nor concept says so. */
    private void model(Path file) throws IOException {
        ResolvedModel m;
        try {
            m = model.source.resolve(file);
        } catch (IOException | IllegalArgumentException e) {
            if (Files.isDirectory(file) || WeightFile.isTorch(file)) throw e;
            String notConcept;
            try {
                FileChecks.concept(file);
                notConcept = file + ": not a concept file";
            } catch (IOException c) {
                notConcept = c.getMessage();
            }
            throw new IOException(notConcept + "; nor a model: " + e.getMessage(), e);
        }
        StateDict stored = storedFile(m.unetWeights());
        String where = stored instanceof TorchCheckpoint t && !t.weightsAt().isEmpty() ? ", weights under '" + t.weightsAt() + "'" : "";
        System.out.println("model           " + file);
        System.out.println("layout          " + (m.layout() == CheckpointLayout.DIFFUSERS_FOLDER
                ? "diffusers folder (weights in " + WeightFile.describe(stored) + " files)"
                : "single file (" + WeightFile.describe(stored) + where + ")"));
        System.out.println("family          " + m.family() + " (" + (m.configFolder().isPresent() ? "configs from " : "")
                + m.configOrigin() + "; prediction " + m.schedulerConfig().predictionType() + ")");
        long total = 0;
        for (var c : new TreeMap<>(Map.of("1 text encoder", m.textEncoderWeights(), "2 UNet", m.unetWeights(), "3 VAE", m.vaeWeights())).entrySet()) {
            StateDict w = c.getValue();
            long params = w.keys().stream().mapToLong(k -> Ops.numel(w.shape(k))).sum();
            total += params;
            Map<String, Long> dtypes = w.keys().stream().collect(Collectors.groupingBy(w::dtype, TreeMap::new, Collectors.counting()));
            String types = dtypes.size() == 1 ? dtypes.keySet().iterator().next()
                    : dtypes.entrySet().stream().map(e -> e.getKey() + " " + e.getValue()).collect(Collectors.joining(", "));
            System.out.println(String.format(Locale.ROOT, "%-15s %,d parameters in %d tensors, %s", c.getKey().substring(2), params,
                    w.keys().size(), types));
        }
        System.out.println(String.format(Locale.ROOT, "%-15s %,d parameters", "total", total));
        for (String note : m.notes()) System.out.println("weights         " + note);
        if (stored instanceof TorchCheckpoint t && !t.info().isEmpty()) {
            System.out.println("checkpoint      " + t.info().entrySet().stream().map(e -> e.getKey() + " " + e.getValue())
                    .collect(Collectors.joining(", ")));
        }
        System.out.println("tokenizer       " + m.tokenizerDir().map(Path::toString).orElse("none (give --tokenizer DIR to generate or train)"));
    }

    /** The file a (renamed) view reads from. */
    private static StateDict storedFile(StateDict weights) {
        StateDict w = weights;
        while (w instanceof RenamedStateDict r) w = r.stored();
        return w;
    }

    private static void printMetadata(Path file, ConceptFile concept) throws java.io.IOException {
        ConceptSummary c = ConceptSummary.of(file, concept);
        System.out.println("concept file    " + file + " (" + String.format(Locale.ROOT, "%,d", c.bytes()) + " bytes)");
        System.out.println("word            " + c.word() + " (a kind of " + c.supercategory() + ")");
        System.out.println("default gate    beta " + c.beta() + ", tau " + c.tau());
        System.out.println("base model      " + c.baseModelHash());
        System.out.println("text encoder    " + c.textEncoderHash());
        System.out.println("text dim        " + c.textDim());
        System.out.println("layers          " + c.layers() + " cross-attention layers, widths " + c.layerWidths());
        System.out.println("stored floats   " + String.format(Locale.ROOT, "%,d", c.storedFloats())
                + " (embedding, i*, one key and one value target per layer)");
        c.training().forEach((k, v) -> System.out.println(String.format(Locale.ROOT, "training %-7s %s", k, v)));
    }

    static void print(GateProfile profile, PrintStream out) {
        List<ConceptFile> concepts = profile.concepts();
        int width = Math.max(16, profile.positions().stream().mapToInt(p -> p.token().length()).max().orElse(0) + 2);
        StringBuilder header = new StringBuilder(String.format(Locale.ROOT, "%-4s %-" + width + "s", "pos", "token"));
        for (ConceptFile c : concepts) header.append(String.format(Locale.ROOT, "  %12s %12s", "s " + c.word(), "g " + c.word()));
        out.println("prompt \"" + profile.prompt() + "\"; gates at " + String.join(", ", concepts.stream()
                .map(c -> c.word() + " beta " + c.beta() + " tau " + c.tau()).toList()));
        out.println(header);
        for (GateProfile.Position p : profile.positions()) {
            StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "%-4d %-" + width + "s", p.position(),
                    p.token() + (p.conceptWord() ? " *" : "")));
            for (int j = 0; j < concepts.size(); j++) {
                line.append(profile.gated(j) ? String.format(Locale.ROOT, "  %12.3f %12.3f", p.s()[j], p.g()[j]) : String.format(Locale.ROOT, "  %12s %12s", "no gate", "no gate"));
            }
            out.println(line);
        }
        out.println("* a concept's word");
        for (int j = 0; j < concepts.size(); j++) out.println(profile.summary(j));
        for (GateProfile.Crossing c : profile.crossings()) {
            if (c.g() < CROSSING_GATE) continue;
            out.println(String.format(Locale.ROOT, "note: %s's gate opens at %s (position %d: s %.3f, g %.3f), so its key and value reach that "
                    + "object too: the two concepts' i* are alike, and that word's key, the two locked keys added, can draw the attention of "
                    + "the whole picture (generate --attention-maps shows it; README, \"Which concept fails\").",
                    c.concept(), c.atWord(), c.position(), c.s(), c.g()));
        }
    }

    /** A gate this open at another concept's word is worth a note. */
    static final double CROSSING_GATE = 0.25;

    static String toJson(GateProfile profile) throws com.fasterxml.jackson.core.JsonProcessingException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode();
        root.put("prompt", profile.prompt());
        ArrayNode concepts = root.putArray("concepts");
        for (ConceptFile c : profile.concepts()) {
            concepts.addObject().put("word", c.word()).put("supercategory", c.supercategory()).put("beta", c.beta()).put("tau", c.tau());
        }
        ArrayNode tokens = root.putArray("tokens");
        for (GateProfile.Position p : profile.positions()) {
            ObjectNode t = tokens.addObject();
            t.put("position", p.position());
            t.put("token", p.token());
            ArrayNode s = t.putArray("s"), g = t.putArray("g");
            for (int j = 0; j < p.s().length; j++) { // null for a concept without a gate (JSON has no NaN)
                if (profile.gated(j)) {
                    s.add(p.s()[j]);
                    g.add(p.g()[j]);
                } else {
                    s.addNull();
                    g.addNull();
                }
            }
            t.put("concept_word", p.conceptWord());
        }
        return json.writerWithDefaultPrettyPrinter().writeValueAsString(root);
    }
}
