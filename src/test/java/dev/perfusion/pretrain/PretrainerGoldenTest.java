package dev.perfusion.pretrain;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.perfusion.io.Safetensors;
import dev.perfusion.tensor.Threads;
import dev.perfusion.util.Progress;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A tiny recipe pretrained bit for bit as recorded, in every file it writes.
 * Each stage stops after every step and resumes (so each checkpoint is written and read); then the decoder stage runs
 * alone from the VAE stage's output, and a continued run trains further from the export.
 *
 * <p>First recorded on the code of commit 7a7b335 (Pretrainer with its stages inline), which the split into stages
 * reproduced exactly; recorded again when AdamW moved to libtorch's fused in-place ops (commit 168b03e), which round
 * differently (AdamWTest: within 1e-6 of the former update after three steps); and again when the diffusion stage's
 * frozen VAE moved to channels-last weights and its loss to a sum over the batch's parts (2026-12-03), which round
 * differently; and again when clipping, AdamW and the EMA moved to flat buffers (TrainedWeights, also 2026-12-03):
 * one norm over all the gradients and the EMA's lerp round differently (TrainedWeightsTest: within 1e-6 of the
 * per-tensor steps after three; every trained tensor of this run has a gradient at its first step, so none is
 * decayed that the per-tensor steps would have left alone); and again when the diffusion stage's frozen VAE began to
 * encode the batches in bf16 on CPUs that compute bf16 natively (2026-12-05; BatchEncodingTest: within bf16's rounding of
 * fp32), both records of this VM class made again on it; and again when the VAE's attention block began to keep its
 * input's NCHW layout (its later convolutions had run channels-last) and the diffusion stage's frozen VAE went back to
 * NCHW weights (2026-12-06: oneDNN's channels-last convolutions are not safe to build on two threads at once, Ops.nchw).
 * The record of the Sapphire Rapids (AMX) machine class went with the channels-last change, the family 25 model 17 one
 * with the last: only such machines can make them again.
 * Computed with the bundled CPU libtorch 2.10 at one intra-op thread and OpenBLAS on the calling thread (as commands
 * compute; OpenBLAS on two threads rounds differently), per machine class. On a machine of a class not recorded, the test checks what the
 * recorded bits stand for where it can: the run stopped and resumed at every step must write the model an
 * uninterrupted run writes; and it prints the hashes to record for that class.
 */
class PretrainerGoldenTest {
    /**
     * Each file and its SHA-256 (the first 16 hex digits), per machine class ({@link dev.perfusion.MachineClass#withOpenBlas()}): oneDNN and OpenBLAS
     * pick their kernels by the CPU's instruction sets, and kernels round differently.
     */
    private static final Map<String, String> RECORDED = Map.of(
        // a 2-core AMD EPYC (Zen 5, family 26 model 2) build VM under OPENBLAS_CORETYPE=Haswell, 2026-12-06
        "avx512-bf16, family 26 model 2 / OpenBLAS Haswell", """
        beside/vae-decoder/config.json bdccde5c1c4c7110
        beside/vae-decoder/diffusion_pytorch_model.safetensors 65a5b4d8e75f8b21
        checkpoint decoder 1 f4941b509a0a8bba
        checkpoint diffusion 1 cedcbd2fb2066db8
        checkpoint vae 1 3b9054bbda6a4362
        continued losses.csv 59754532a7870e3f
        continued/recipe.json 9e3b374d16f0310a
        continued/text_encoder/model.safetensors ed6b840ca75871a9
        continued/unet/diffusion_pytorch_model.safetensors c4b9ca67869ce015
        losses.csv 02027fd8d2b50230
        model/model_index.json 1fa75ac6ac47ce8e
        model/recipe.json 3c814322ca698ab5
        model/scheduler/scheduler_config.json 4bcf5ee88ccb8a19
        model/text_encoder/config.json bea0317ed63beb95
        model/text_encoder/model.safetensors 14b2fc1bb5ccaef6
        model/tokenizer/merges.txt b9e0a403dc44a0e2
        model/tokenizer/special_tokens_map.json 40116d35f015230b
        model/tokenizer/tokenizer_config.json 7e2d119007b6cf79
        model/tokenizer/vocab.json 4ac520259d7f476e
        model/unet/config.json 174f0ad04682183b
        model/unet/diffusion_pytorch_model.safetensors dea74b89c4776f5e
        model/vae/config.json bdccde5c1c4c7110
        model/vae/diffusion_pytorch_model.safetensors 0b9b296402bf4fed
        samples/decoder-00002.png 982081b526ca4aa5
        samples/vae-00002.png f1bafd2221eaf67c
        work/vae-decoder/config.json bdccde5c1c4c7110
        work/vae-decoder/diffusion_pytorch_model.safetensors 65a5b4d8e75f8b21
        work/vae/config.json bdccde5c1c4c7110
        work/vae/diffusion_pytorch_model.safetensors 885048349d6c65ff
        """,
        // a 2-core AMD EPYC (Zen 3, family 25 model 1) VM, OpenBLAS choosing its own kernels, 2026-12-07
        "avx2, family 25 model 1 / OpenBLAS auto", """
        beside/vae-decoder/config.json ddd14c6538aeee98
        beside/vae-decoder/diffusion_pytorch_model.safetensors 56a3950afbc58aea
        checkpoint decoder 1 aa5ff7451900a4b8
        checkpoint diffusion 1 7faedd663401a656
        checkpoint vae 1 6e53035a1cb66998
        continued losses.csv 291565079412f906
        continued/recipe.json a93c32a66e214b86
        continued/text_encoder/model.safetensors d56845f6111ff60d
        continued/unet/diffusion_pytorch_model.safetensors 7bd47a8536b795f7
        losses.csv 87e1bbbeb6cbaaa0
        model/model_index.json 1fa75ac6ac47ce8e
        model/recipe.json 9014440ee4483118
        model/scheduler/scheduler_config.json 4bcf5ee88ccb8a19
        model/text_encoder/config.json bea0317ed63beb95
        model/text_encoder/model.safetensors 7588d7b4d4c90b65
        model/tokenizer/merges.txt b9e0a403dc44a0e2
        model/tokenizer/special_tokens_map.json 40116d35f015230b
        model/tokenizer/tokenizer_config.json 7e2d119007b6cf79
        model/tokenizer/vocab.json 4ac520259d7f476e
        model/unet/config.json 174f0ad04682183b
        model/unet/diffusion_pytorch_model.safetensors ea1d8bee671444e7
        model/vae/config.json ddd14c6538aeee98
        model/vae/diffusion_pytorch_model.safetensors 0bff7d41195a6fa4
        samples/decoder-00002.png 1f9d9716fad89680
        samples/vae-00002.png 3b0ac05142bf6963
        work/vae-decoder/config.json ddd14c6538aeee98
        work/vae-decoder/diffusion_pytorch_model.safetensors 56a3950afbc58aea
        work/vae/config.json ddd14c6538aeee98
        work/vae/diffusion_pytorch_model.safetensors 30f8681e3c89e86d
        """);

    @TempDir Path tmp;

    @Test
    void aTinyRecipeTrainsTheRecordedBits() throws Exception {
        // oneDNN splits a convolution's reductions by thread, so the bits are those of one thread count
        int threadsBefore = torch.get_num_threads();
        Threads.use(1);
        try {
            trainTinyRecipe();
        } finally {
            Threads.use(threadsBefore);
        }
    }

    private void trainTinyRecipe() throws Exception {
        BaseModelRecipe recipe = BaseModelRecipe.standard().quick(2, 2);
        Path work = tmp.resolve("work");
        Map<String, String> hashes = new TreeMap<>();
        Pretrainer.Result r;
        do {
            r = new Pretrainer(recipe, work, Progress.NONE).schedule(1, 1000).timeLimit(0).run();
            if (!r.finished()) hashes.put("checkpoint " + r.stage() + " " + r.step(), safetensors(work.resolve("checkpoint-" + r.stage() + ".safetensors")));
        } while (!r.finished());
        Path model = r.model();
        hashes.putAll(exported("model", model));
        for (Path png : sorted(work.resolve("samples"))) {
            // the diffusion stage's sample grid is drawn as any picture is (TextToImage, OpenBLAS on one thread for a
            // small model, golden against the reference elsewhere), not by the training code these bits stand for
            if (!png.getFileName().toString().startsWith("step-")) hashes.put("samples/" + png.getFileName(), sha(Files.readAllBytes(png)));
        }
        hashes.put("losses.csv", lossesWithoutSeconds(work.resolve("losses.csv")));
        hashes.putAll(exported("work/vae", work.resolve("vae")));
        hashes.putAll(exported("work/vae-decoder", work.resolve("vae-decoder")));

        // the decoder stage alone, as beside the diffusion stage: from the VAE stage's output, into no model yet
        Path beside = tmp.resolve("beside");
        copy(work.resolve("vae"), beside.resolve("vae"));
        Pretrainer.Result decoder = new Pretrainer(recipe, beside, Progress.NONE).schedule(1, 1000).runDecoderStage();
        assertEquals("decoder", decoder.stage());
        assertEquals(beside.resolve("vae-decoder"), decoder.model(), "the decoder waits there for the main run (it said 'the model is in null')");
        hashes.putAll(exported("beside/vae-decoder", beside.resolve("vae-decoder")));
        List<String> logged = Files.readAllLines(beside.resolve("losses.csv"));
        Pretrainer.Result again = new Pretrainer(recipe, beside, Progress.NONE).schedule(1, 1000).runDecoderStage();
        org.junit.jupiter.api.Assertions.assertTrue(again.finished() && Double.isNaN(again.loss()), "done before: not trained again");
        assertEquals(logged, Files.readAllLines(beside.resolve("losses.csv")));

        Path more = tmp.resolve("more");
        Pretrainer.Result continued = new Pretrainer(recipe.withSteps(2, 1, 2), more, Progress.NONE).schedule(1, 1000).continueFrom(model).run();
        // what the continued run copies, or writes again as it was, is the first model's; only the rest is listed
        exported("continued", continued.model()).forEach((file, hash) -> {
            if (!hash.equals(hashes.get(file.replace("continued/", "model/")))) hashes.put(file, hash);
        });
        hashes.put("continued losses.csv", lossesWithoutSeconds(more.resolve("losses.csv")));

        StringBuilder now = new StringBuilder();
        hashes.forEach((file, hash) -> now.append(file).append(' ').append(hash).append('\n'));
        String recorded = RECORDED.get(dev.perfusion.MachineClass.withOpenBlas());
        if (recorded != null) {
            assertEquals(recorded, now.toString(), "machine class " + dev.perfusion.MachineClass.withOpenBlas());
        } else {
            Path straight = tmp.resolve("straight");
            Pretrainer.Result uninterrupted = new Pretrainer(recipe, straight, Progress.NONE).schedule(1000, 1000).run();
            // the smoothed loss in recipe.json starts again at each resume, so it is the one thing the two may differ in
            assertEquals(withoutRecipe(exported("model", model)), withoutRecipe(exported("model", uninterrupted.model())),
                    "the model of the run stopped at every step and the uninterrupted run's");
            System.out.println("PretrainerGoldenTest: no bits recorded for the machine class '" + dev.perfusion.MachineClass.withOpenBlas() + "'; to record:\n" + now);
        }
    }

    private static Map<String, String> withoutRecipe(Map<String, String> hashes) {
        Map<String, String> out = new TreeMap<>(hashes);
        out.keySet().removeIf(file -> file.endsWith("/recipe.json"));
        return out;
    }

    /** The weights by their tensors (not the header bytes: metadata order is a JVM's choice), the rest as bytes. */
    private static Map<String, String> exported(String prefix, Path model) throws IOException {
        Map<String, String> out = new TreeMap<>();
        try (var files = Files.walk(model)) {
            for (Path f : files.filter(Files::isRegularFile).sorted().toList()) {
                String name = prefix + "/" + model.relativize(f).toString().replace('\\', '/');
                String file = f.getFileName().toString();
                out.put(name, file.endsWith(".safetensors") ? safetensors(f) : file.equals("recipe.json") ? recipeWithoutTimes(f) : sha(Files.readAllBytes(f)));
            }
        }
        return out;
    }

    private static String safetensors(Path file) throws IOException {
        Safetensors st = Safetensors.open(file);
        Map<String, String> metadata = new TreeMap<>(st.metadata());
        metadata.remove("recipe"); // the recipe a resume must share, recorded since the bits were: TrainedWeightsTest checks it
        metadata.remove("computed_on"); // the threads and instruction set, recorded since the bits were: PretrainerTest checks it
        StringBuilder header = new StringBuilder(metadata.toString());
        st.entries().values().forEach(e -> header.append(e.name()).append(e.dtype()).append(Arrays.toString(e.shape())).append(e.begin()));
        byte[] bytes = Files.readAllBytes(file);
        long headerLength = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        byte[] data = Arrays.copyOfRange(bytes, (int) (8 + headerLength), bytes.length);
        return sha(header.toString().getBytes(StandardCharsets.UTF_8), data);
    }

    /** The recipe record but for what differs from run to run: the times and the machine. */
    private static String recipeWithoutTimes(Path recipeJson) throws IOException {
        JsonNode record = new ObjectMapper().readTree(recipeJson.toFile());
        for (JsonNode r = record; r != null; r = r.get("continued_from")) ((ObjectNode) r).remove(List.of("seconds_this_run", "seconds_total", "machine"));
        return sha(record.toString().getBytes(StandardCharsets.UTF_8));
    }

    /** stage, step and loss of each line: the seconds and the run's name (since 2026-12-07) differ from run to run. */
    private static String lossesWithoutSeconds(Path csv) throws IOException {
        StringBuilder kept = new StringBuilder();
        for (String line : Files.readAllLines(csv)) kept.append(String.join(",", List.of(line.split(",")).subList(0, 3))).append('\n');
        return sha(kept.toString().getBytes(StandardCharsets.UTF_8));
    }

    private static void copy(Path from, Path to) throws IOException {
        Files.createDirectories(to);
        for (Path f : sorted(from)) Files.copy(f, to.resolve(f.getFileName()));
    }

    private static List<Path> sorted(Path dir) throws IOException {
        try (var files = Files.list(dir)) {
            return files.sorted().toList();
        }
    }

    private static String sha(byte[]... parts) {
        try {
            MessageDigest d = MessageDigest.getInstance("SHA-256");
            for (byte[] p : parts) d.update(p);
            return HexFormat.of().formatHex(d.digest()).substring(0, 16);
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }
}
