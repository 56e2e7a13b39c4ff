package dev.perfusion.fuzz;

import dev.perfusion.perfusion.ProjectionEdit;
import dev.perfusion.io.Npy;
import dev.perfusion.io.Png;
import dev.perfusion.io.Safetensors;
import dev.perfusion.io.pickle.PickleWriter;
import dev.perfusion.io.pickle.StorageType;
import dev.perfusion.io.pickle.TorchSaveWriter;
import dev.perfusion.perfusion.ConceptFile;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

import javax.imageio.ImageIO;
import java.awt.Color;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * Writes the committed seed corpus of the fuzz tests (src/test/resources/dev/perfusion/fuzz/*Inputs/), mostly with
 * the project's own writers, so that the seeds are what the readers meet in use. Run it after a format changes:
 * {@code mvn test -Dtest=SeedCorpus -Dperfusion.fuzz.writeSeeds=true}. Findings that Jazzer saves beside the seeds
 * (crash-*) are kept as they are.
 */
@EnabledIfSystemProperty(named = "perfusion.fuzz.writeSeeds", matches = "true")
class SeedCorpus {
    private static final Path ROOT = Path.of("src/test/resources/dev/perfusion/fuzz");

    private static Path seed(String test, String method, String name) throws IOException {
        return Files.createDirectories(ROOT.resolve(test + "Inputs").resolve(method)).resolve(name);
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** A safetensors file with a hand-written header and {@code data} bytes of data. */
    private static byte[] safetensors(String header, int data) {
        byte[] h = utf8(header);
        return ByteBuffer.allocate(8 + h.length + data).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length).put(h).array();
    }

    @Test
    void write() throws IOException {
        try (Scope s = Scope.inference()) {
            safetensorsSeeds();
            conceptSeeds();
            checkpointSeeds();
            torchCheckpointSeeds();
        }
        npySeeds();
        imageSeeds();
        configSeeds();
        tokenizerSeeds();
    }

    private void safetensorsSeeds() throws IOException {
        Map<String, Tensor> two = new LinkedHashMap<>();
        two.put("conv.weight", Ops.fromFloats(new float[] {1, -2, 3.5f, 0, 1e-3f, 7}, 2, 3));
        two.put("conv.bias", Ops.fromFloats(new float[] {0.5f, -0.5f}, 2));
        Safetensors.write(seed("SafetensorsFuzzTest", "open", "f32-two-tensors"), two, Map.of("format", "pt"),
                Safetensors.StoredType.F32);
        Safetensors.write(seed("SafetensorsFuzzTest", "open", "f16"), two, Map.of(), Safetensors.StoredType.F16);
        Safetensors.write(seed("SafetensorsFuzzTest", "open", "empty-tensor"), Map.of("e", Ops.zeros(0, 3)), null,
                Safetensors.StoredType.F32);
        Files.write(seed("SafetensorsFuzzTest", "open", "other-dtypes"), safetensors("{\"i\":{\"dtype\":\"I64\",\"shape\":[1],"
                + "\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[8,12]},\"u\":{\"dtype\":"
                + "\"U8\",\"shape\":[2,1],\"data_offsets\":[12,14]},\"m\":{\"dtype\":\"BOOL\",\"shape\":[],\"data_offsets\":"
                + "[14,15]},\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[16,24]}}", 24));
        Files.write(seed("SafetensorsFuzzTest", "open", "header-only"), safetensors("{\"__metadata__\":{\"k\":\"v\"}}  ", 0));
    }

    /**
     * Incomplete single-file checkpoints: a few tensors per component under SD 1.x (CLIP) and 2.x (OpenCLIP) names, as
     * safetensors and as torch.save zip files.
     */
    private void checkpointSeeds() throws IOException {
        for (boolean sd2 : new boolean[] {false, true}) {
            Map<String, Tensor> t = new LinkedHashMap<>();
            t.put("model.diffusion_model.input_blocks.0.0.weight", Ops.zeros(4, 4, 1, 1));
            t.put("model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", Ops.zeros(4, sd2 ? 3 : 2));
            t.put("first_stage_model.encoder.conv_in.weight", Ops.zeros(2, 3, 1, 1));
            t.put("first_stage_model.decoder.up.1.block.0.conv1.weight", Ops.zeros(2, 2, 1, 1));
            if (sd2) {
                t.put("cond_stage_model.model.token_embedding.weight", Ops.zeros(5, 3));
                t.put("cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight", Ops.zeros(9, 3));
                t.put("cond_stage_model.model.transformer.resblocks.1.ln_1.weight", Ops.zeros(3));
            } else {
                t.put("cond_stage_model.transformer.text_model.embeddings.token_embedding.weight", Ops.zeros(5, 2));
                t.put("cond_stage_model.transformer.text_model.encoder.layers.0.mlp.fc1.weight", Ops.zeros(4, 2));
                t.put("cond_stage_model.transformer.text_model.encoder.layers.11.layer_norm1.weight", Ops.zeros(2));
            }
            Safetensors.write(seed("CheckpointFuzzTest", "singleFile", sd2 ? "sd2-names" : "sd1-names"), t, Map.of(),
                    Safetensors.StoredType.F16);
            // the same as a PyTorch .ckpt, weights under state_dict (recognised by content whatever the file's name)
            TorchSaveWriter.zip(seed("CheckpointFuzzTest", "singleFile", sd2 ? "sd2-names-ckpt" : "sd1-names-ckpt"), t,
                    TorchSaveWriter.Layout.lightning(1));
        }
    }

    /** torch.save-format files (zip and legacy) and their bare pickles. */
    private void torchCheckpointSeeds() throws IOException {
        Map<String, Tensor> two = new LinkedHashMap<>();
        two.put("model.diffusion_model.input_blocks.0.0.weight", Ops.fromFloats(new float[] {1, -2, 3.5f, 0, 1e-3f, 7}, 2, 3));
        two.put("model_ema.diffusion_modelinput_blocks00weight", Ops.fromFloats(new float[] {1, 2, 3, 4, 5, 6}, 2, 3));
        two.put("first_stage_model.decoder.conv_in.bias", Ops.fromFloats(new float[] {0.5f, -0.5f}, 2).to(torch.ScalarType.Half));
        two.put("step", Ops.fromLongs(new long[] {7}, 1));
        two.put("mask", Ops.fromFloats(new float[] {1, 0, 1}, 3).to(torch.ScalarType.Bool));
        two.put("bf16", Ops.fromFloats(new float[] {1.5f, -3}, 2).to(torch.ScalarType.BFloat16));
        TorchSaveWriter.zip(seed("TorchCheckpointFuzzTest", "open", "zip-lightning"), two, TorchSaveWriter.Layout.lightning(470000));
        TorchSaveWriter.zip(seed("TorchCheckpointFuzzTest", "open", "zip-plain"), two, TorchSaveWriter.Layout.PLAIN);
        TorchSaveWriter.legacy(seed("TorchCheckpointFuzzTest", "open", "legacy-lightning"), two, TorchSaveWriter.Layout.lightning(1));
        // views of one storage: a row slice at an offset and a transpose
        PickleWriter views = new PickleWriter().proto(2).op('}').mark().str("rows");
        TorchSaveWriter.tensor(views, "0", StorageType.FLOAT, 6, 3, new long[] {1, 3}, new long[] {3, 1}, true, false);
        views.str("transposed");
        TorchSaveWriter.tensor(views, "0", StorageType.FLOAT, 6, 0, new long[] {3, 2}, new long[] {1, 3}, false, false);
        byte[] viewsPickle = views.op('u').stop().bytes();
        Files.write(seed("TorchCheckpointFuzzTest", "open", "zip-views"), zipOf("views", viewsPickle, floats(0, 1, 2, 3, 4, 5)));
        // protocol 4: STACK_GLOBAL, SHORT_BINUNICODE, MEMOIZE
        PickleWriter p4 = new PickleWriter().proto(4).op('}').op(0x94).shortStr("w").stackGlobal("torch._utils", "_rebuild_tensor_v2")
                .op(0x94).mark().mark().shortStr("storage").stackGlobal("torch", "FloatStorage").shortStr("0").shortStr("cpu")
                .integer(6).op('t').op('Q').integer(0).ints(6).ints(1).op(0x89).stackGlobal("collections", "OrderedDict").op(')')
                .op('R').op('t').op('R').op('s').stop();
        Files.write(seed("TorchCheckpointFuzzTest", "open", "zip-protocol-4"), zipOf("p4", p4.bytes(), floats(0, 1, 2, 3, 4, 5)));
        // refused: builtins.eval called; a storage longer than its member
        byte[] eval = new PickleWriter().proto(2).op('}').str("x").global("builtins", "eval").str("1+1").op(0x85).op('R').op('s')
                .stop().bytes();
        Files.write(seed("TorchCheckpointFuzzTest", "open", "zip-eval"), zipOf("eval", eval, floats()));
        Files.write(seed("TorchCheckpointFuzzTest", "open", "zip-short-storage"), zipOf("short", viewsPickle, floats(0, 1)));
        for (var e : Map.of("views", viewsPickle, "protocol-4", p4.bytes(), "eval", eval).entrySet()) {
            Files.write(seed("TorchCheckpointFuzzTest", "pickle", e.getKey()), e.getValue());
        }
    }

    private static byte[] floats(float... values) {
        ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) b.putFloat(v);
        return b.array();
    }

    /** A torch.save-style zip: {@code archive}/data.pkl and one storage '0', stored. */
    private static byte[] zipOf(String archive, byte[] pickle, byte[] storage) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ZipOutputStream zip = new ZipOutputStream(bytes)) {
            for (var e : List.of(Map.entry(archive + "/data.pkl", pickle), Map.entry(archive + "/data/0", storage),
                    Map.entry(archive + "/version", utf8("3\n")))) {
                ZipEntry entry = new ZipEntry(e.getKey());
                entry.setMethod(ZipEntry.STORED);
                entry.setSize(e.getValue().length);
                CRC32 crc = new CRC32();
                crc.update(e.getValue());
                entry.setCrc(crc.getValue());
                zip.putNextEntry(entry);
                zip.write(e.getValue());
                zip.closeEntry();
            }
        }
        return bytes.toByteArray();
    }

    private void conceptSeeds() throws IOException {
        Tensor v = Ops.fromFloats(new float[] {0.1f, -0.2f, 0.3f, 0.4f}, 4);
        Tensor k = Ops.fromFloats(new float[] {1, 2, 3}, 3), o = Ops.fromFloats(new float[] {-1, 0, 1}, 3);
        ConceptFile two = new ConceptFile("my-cat", "cat", v, v, new ProjectionEdit(ProjectionEdit.Kind.GATED_RANK_ONE, List.of(k, k), List.of(o, o)), 0.75, 0.1, "unet0", "text0",
                Map.of("method", "perfusion", "steps", "400"));
        two.save(seed("ConceptFileFuzzTest", "load", "two-layers"));
        new ConceptFile("my-toy", "toy", v, v, ProjectionEdit.none(), 0.7, 0.1, "unet0", "text0", Map.of())
                .save(seed("ConceptFileFuzzTest", "load", "embedding-only"));
        // a concept whose metadata lacks its layer count
        Map<String, Tensor> t = new LinkedHashMap<>();
        t.put("embedding", v);
        t.put("i_star", v);
        Safetensors.write(seed("ConceptFileFuzzTest", "load", "no-layer-count"), t,
                Map.of("format", "perfusion-concept", "format_version", "1", "word", "w"), Safetensors.StoredType.F32);
    }

    private void npySeeds() throws IOException {
        Npy.writeFloats(seed("NpyFuzzTest", "read", "f4-2x3"), new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        Npy.writeFloats(seed("NpyFuzzTest", "read", "f4-vector"), new float[] {1, 2, 3, 4}, 4);
        Npy.writeFloats(seed("NpyFuzzTest", "read", "f4-scalar"), new float[] {7}, new long[0]);
        Files.write(seed("NpyFuzzTest", "read", "f8-v1"), npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16));
        Files.write(seed("NpyFuzzTest", "read", "i8-v2"), npy(2, "{'descr': '<i8', 'fortran_order': False, 'shape': (1, 1), }", 8));
        Files.write(seed("NpyFuzzTest", "read", "fortran"), npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", 4));
    }

    /** A .npy file of format {@code version} with {@code header} and {@code data} zero bytes. */
    private static byte[] npy(int version, String header, int data) {
        byte[] h = (header + "\n").getBytes(StandardCharsets.ISO_8859_1);
        int pre = version == 1 ? 10 : 12;
        ByteBuffer b = ByteBuffer.allocate(pre + h.length + data).order(ByteOrder.LITTLE_ENDIAN);
        b.put((byte) 0x93).put(utf8("NUMPY")).put((byte) version).put((byte) 0);
        if (version == 1) b.putShort((short) h.length); else b.putInt(h.length);
        return b.put(h).array();
    }

    private void imageSeeds() throws IOException {
        BufferedImage img = new BufferedImage(4, 3, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 3; y++) for (int x = 0; x < 4; x++) img.setRGB(x, y, new Color(60 * x, 80 * y, 128).getRGB());
        Png.write(seed("ImageFuzzTest", "pngText", "ascii-parameters.png"), img,
                Map.of("parameters", "a photo of my-cat\nSteps: 20, Sampler: DDIM, Seed: 42"));
        Png.write(seed("ImageFuzzTest", "pngText", "utf8-parameters.png"), img, Map.of("parameters", "一只猫 🐱 café"));
        Png.write(seed("ImageFuzzTest", "pngText", "no-text.png"), img, Map.of());
        Png.write(seed("ImageFuzzTest", "trainingImage", "rgb.png"), img, Map.of());
        BufferedImage gray = new BufferedImage(3, 2, BufferedImage.TYPE_BYTE_GRAY);
        ImageIO.write(gray, "png", seed("ImageFuzzTest", "trainingImage", "gray.png").toFile());
        for (String format : List.of("jpg", "bmp", "gif")) {
            ImageIO.write(img, format, seed("ImageFuzzTest", "trainingImage", "rgb." + format).toFile());
        }
        Files.write(seed("ImageFuzzTest", "trainingImage", "exif-orientation-6.jpg"), dev.perfusion.training.ExifOrientationTest.withOrientation(img, 6, false));
    }

    private void configSeeds() throws IOException {
        for (String family : List.of("sd15", "sd21-base")) {
            copyResource("/dev/perfusion/configs/" + family + "/unet/config.json", seed("ConfigFuzzTest", "unet", family));
            copyResource("/dev/perfusion/configs/" + family + "/vae/config.json", seed("ConfigFuzzTest", "vae", family));
            copyResource("/dev/perfusion/configs/" + family + "/text_encoder/config.json", seed("ConfigFuzzTest", "textEncoder", family));
            copyResource("/dev/perfusion/configs/" + family + "/scheduler/scheduler_config.json", seed("ConfigFuzzTest", "scheduler", family));
        }
        Path world = Path.of("models/world");
        Files.copy(world.resolve("unet/config.json"), seed("ConfigFuzzTest", "unet", "world"), REPLACE);
        Files.copy(world.resolve("vae/config.json"), seed("ConfigFuzzTest", "vae", "world"), REPLACE);
        Files.copy(world.resolve("text_encoder/config.json"), seed("ConfigFuzzTest", "textEncoder", "world"), REPLACE);
        Files.copy(world.resolve("scheduler/scheduler_config.json"), seed("ConfigFuzzTest", "scheduler", "world"), REPLACE);
        Files.writeString(seed("ConfigFuzzTest", "scheduler", "euler-karras-v"), "{\"beta_schedule\": \"squaredcos_cap_v2\","
                + " \"num_train_timesteps\": 100, \"prediction_type\": \"v_prediction\", \"use_karras_sigmas\": true,"
                + " \"timestep_spacing\": \"trailing\", \"steps_offset\": 1, \"skip_prk_steps\": true}");
    }

    private static final java.nio.file.CopyOption REPLACE = java.nio.file.StandardCopyOption.REPLACE_EXISTING;

    private static void copyResource(String name, Path to) throws IOException {
        try (InputStream in = SeedCorpus.class.getResourceAsStream(name)) {
            Files.copy(in, to, REPLACE);
        }
    }

    private void tokenizerSeeds() throws IOException {
        String vocab = "{\"<|startoftext|>\": 0, \"<|endoftext|>\": 1, \"!\": 2, \"a\": 3, \"c\": 4, \"t\": 5, \"a</w>\": 6,"
                + " \"t</w>\": 7, \"ca\": 8, \"cat</w>\": 9, \"Ã\": 10, \"¦\": 11}";
        String merges = "#version: 0.2\nc a\nca t</w>\n";
        String config = "{\"model_max_length\": 8, \"bos_token\": {\"content\": \"<|startoftext|>\"}, \"pad_token\": \"!\"}";
        String special = "{\"unk_token\": \"<|endoftext|>\", \"eos_token\": \"<|endoftext|>\"}";
        Files.write(seed("TokenizerFuzzTest", "load", "vocab-merges"), join(vocab, merges));
        Files.write(seed("TokenizerFuzzTest", "load", "all-four-files"), join(vocab, merges, config, special));
        Files.write(seed("TokenizerFuzzTest", "load", "no-version-line"), join(vocab, "c a\n", "{\"model_max_length\": 1e30}"));
        List<String> texts = List.of("a photo of my-cat on the beach", "A PHOTO of a Cat!!! <|endoftext|> my-catmy-cat",
                "一只猫的照片 🐱🐈 ΟΔΟΣ İstanbul ﬁne Ⓐ", "tab\tnew\nline\u0000nul\u200bzero-width \ud800 lone \udc00 surrogates",
                "don't we'll it's 'S 'ſ 3.14 1,000 ... ?!?! ((masterpiece)) [cat:dog:0.5]",
                "a cat ".repeat(40));
        for (int i = 0; i < texts.size(); i++) {
            Files.write(seed("TokenizerFuzzTest", "encode", "text-" + i), texts.get(i).getBytes(StandardCharsets.UTF_16BE));
        }
    }

    private static byte[] join(String... files) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int i = 0; i < files.length; i++) {
            if (i > 0) out.write(0);
            out.writeBytes(utf8(files[i]));
        }
        return out.toByteArray();
    }
}
