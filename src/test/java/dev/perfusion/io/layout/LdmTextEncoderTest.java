package dev.perfusion.io.layout;

import dev.perfusion.io.Safetensors;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.text.ClipTextConfig;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.*;

class LdmTextEncoderTest {
    private static final int WIDTH = 8, VOCAB = 10, POSITIONS = 5, MLP = 12, TOWER_LAYERS = 3;
    @TempDir Path tmp;

    private static ClipTextConfig config(int layers, int width) {
        return new ClipTextConfig(VOCAB, width, MLP, layers, 1, POSITIONS, "quick_gelu", 1e-5, 0, 1, 1, width);
    }

    private static Tensor random(long seed, long... shape) {
        torch.manual_seed(seed);
        return torch.randn(shape);
    }

    /** An SD 2.x-style OpenCLIP text tower with tiny shapes and one more layer than the config uses. */
    private Path openClipFile() throws IOException {
        Map<String, Tensor> t = new LinkedHashMap<>();
        String p = LdmTextEncoder.OPEN_CLIP_PREFIX;
        long seed = 1;
        t.put(p + "token_embedding.weight", random(seed++, VOCAB, WIDTH));
        t.put(p + "positional_embedding", random(seed++, POSITIONS, WIDTH));
        t.put(p + "ln_final.weight", random(seed++, WIDTH));
        t.put(p + "ln_final.bias", random(seed++, WIDTH));
        t.put(p + "text_projection", random(seed++, WIDTH, WIDTH));
        t.put(p + "logit_scale", Ops.fromFloats(new float[] {4.6f}, 1));
        for (int i = 0; i < TOWER_LAYERS; i++) {
            String r = p + "transformer.resblocks." + i + ".";
            t.put(r + "ln_1.weight", random(seed++, WIDTH));
            t.put(r + "ln_1.bias", random(seed++, WIDTH));
            t.put(r + "attn.in_proj_weight", random(seed++, 3 * WIDTH, WIDTH));
            t.put(r + "attn.in_proj_bias", random(seed++, 3 * WIDTH));
            t.put(r + "attn.out_proj.weight", random(seed++, WIDTH, WIDTH));
            t.put(r + "attn.out_proj.bias", random(seed++, WIDTH));
            t.put(r + "ln_2.weight", random(seed++, WIDTH));
            t.put(r + "ln_2.bias", random(seed++, WIDTH));
            t.put(r + "mlp.c_fc.weight", random(seed++, MLP, WIDTH));
            t.put(r + "mlp.c_fc.bias", random(seed++, MLP));
            t.put(r + "mlp.c_proj.weight", random(seed++, WIDTH, MLP));
            t.put(r + "mlp.c_proj.bias", random(seed++, WIDTH));
        }
        Path file = tmp.resolve("openclip.safetensors");
        Safetensors.write(file, t, Map.of(), Safetensors.StoredType.F32);
        return file;
    }

    @Test
    void openClipTowerMapsToClipTextModelNamesWithQkvSplit() throws IOException {
        try (Scope s = Scope.inference()) {
            Path path = openClipFile();
            Safetensors file = Safetensors.open(path);
            int layers = TOWER_LAYERS - 1;
            RenamedStateDict view = LdmTextEncoder.view(file, path, config(layers, WIDTH), "test config");

            Set<String> expected = new TreeSet<>(Set.of("text_model.embeddings.token_embedding.weight",
                    "text_model.embeddings.position_embedding.weight", "text_model.final_layer_norm.weight",
                    "text_model.final_layer_norm.bias"));
            for (int i = 0; i < layers; i++) {
                for (String m : new String[] {"layer_norm1", "layer_norm2", "self_attn.q_proj", "self_attn.k_proj",
                        "self_attn.v_proj", "self_attn.out_proj", "mlp.fc1", "mlp.fc2"}) {
                    expected.add("text_model.encoder.layers." + i + "." + m + ".weight");
                    expected.add("text_model.encoder.layers." + i + "." + m + ".bias");
                }
            }
            assertEquals(expected, new TreeSet<>(view.keys()), "the last tower layer and text_projection are left out");

            for (int i = 0; i < layers; i++) {
                String r = LdmTextEncoder.OPEN_CLIP_PREFIX + "transformer.resblocks." + i + ".";
                float[] fusedW = Ops.toFloats(file.get(r + "attn.in_proj_weight"));
                float[] fusedB = Ops.toFloats(file.get(r + "attn.in_proj_bias"));
                String[] qkv = {"q_proj", "k_proj", "v_proj"};
                for (int j = 0; j < 3; j++) {
                    String name = "text_model.encoder.layers." + i + ".self_attn." + qkv[j];
                    assertArrayEquals(new long[] {WIDTH, WIDTH}, view.shape(name + ".weight"));
                    assertArrayEquals(new long[] {WIDTH}, view.shape(name + ".bias"));
                    Tensor w = view.get(name + ".weight");
                    assertArrayEquals(new long[] {WIDTH, WIDTH}, Ops.shape(w));
                    assertArrayEquals(Arrays.copyOfRange(fusedW, j * WIDTH * WIDTH, (j + 1) * WIDTH * WIDTH), Ops.toFloats(w), name);
                    assertArrayEquals(Arrays.copyOfRange(fusedB, j * WIDTH, (j + 1) * WIDTH), Ops.toFloats(view.get(name + ".bias")), name);
                }
                // the split is a partition of the fused projection: q;k;v stacked again gives it back
                Tensor restacked = Ops.cat(0, view.get("text_model.encoder.layers." + i + ".self_attn.q_proj.weight"),
                        view.get("text_model.encoder.layers." + i + ".self_attn.k_proj.weight"),
                        view.get("text_model.encoder.layers." + i + ".self_attn.v_proj.weight"));
                assertEquals(0.0, Ops.maxAbsDiff(restacked, file.get(r + "attn.in_proj_weight")));
                assertEquals(0.0, Ops.maxAbsDiff(view.get("text_model.encoder.layers." + i + ".mlp.fc1.weight"),
                        file.get(r + "mlp.c_fc.weight")));
                assertEquals(0.0, Ops.maxAbsDiff(view.get("text_model.encoder.layers." + i + ".layer_norm2.bias"),
                        file.get(r + "ln_2.bias")));
            }
            assertEquals(0.0, Ops.maxAbsDiff(view.get("text_model.embeddings.position_embedding.weight"),
                    file.get(LdmTextEncoder.OPEN_CLIP_PREFIX + "positional_embedding")));
            String d = view.describe("text_model.encoder.layers.1.self_attn.k_proj.weight");
            assertTrue(d.contains("openclip.safetensors") && d.contains("transformer.resblocks.1.attn.in_proj_weight")
                    && d.contains("rows 8..15"), d);
        }
    }

    @Test
    void openClipWidthOrDepthNotMatchingTheConfigIsReported() throws IOException {
        Path path = openClipFile();
        Safetensors file = Safetensors.open(path);
        IllegalArgumentException wide = assertThrows(IllegalArgumentException.class,
                () -> LdmTextEncoder.view(file, path, config(2, 16), "test config"));
        assertTrue(wide.getMessage().contains("hidden_size 16"), wide.getMessage());
        IllegalArgumentException deep = assertThrows(IllegalArgumentException.class,
                () -> LdmTextEncoder.view(file, path, config(5, WIDTH), "test config"));
        assertTrue(deep.getMessage().startsWith(path + ": the text encoder config (from test config) has 5 layers but the file has 3"),
                deep.getMessage());
    }

    @Test
    void olderClipFilesWithoutTheTextModelInfix() throws IOException {
        try (Scope s = Scope.inference()) {
            Map<String, Tensor> t = new LinkedHashMap<>();
            String p = LdmTextEncoder.CLIP_PREFIX;
            t.put(p + "embeddings.token_embedding.weight", random(1, VOCAB, WIDTH));
            t.put(p + "embeddings.position_ids", Ops.fromFloats(new float[] {0, 1, 2, 3, 4}, 1, POSITIONS));
            t.put(p + "encoder.layers.0.self_attn.q_proj.weight", random(2, WIDTH, WIDTH));
            t.put(p + "final_layer_norm.weight", random(3, WIDTH));
            Path path = tmp.resolve("old-clip.safetensors");
            Safetensors.write(path, t, Map.of(), Safetensors.StoredType.F16);
            Safetensors file = Safetensors.open(path);
            assertEquals(LdmTextEncoder.Layout.CLIP, LdmTextEncoder.detect(file).orElseThrow());
            RenamedStateDict view = LdmTextEncoder.view(file, path, config(1, WIDTH), "test config");
            assertEquals(new TreeSet<>(Set.of("text_model.embeddings.token_embedding.weight",
                    "text_model.encoder.layers.0.self_attn.q_proj.weight", "text_model.final_layer_norm.weight")),
                    new TreeSet<>(view.keys()), "position_ids is not a weight");
            assertEquals(0.0, Ops.maxAbsDiff(view.get("text_model.final_layer_norm.weight"), file.get(p + "final_layer_norm.weight")));
        }
    }
}
