package dev.perfusion.nn;

import dev.perfusion.io.Safetensors;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** Parameters are named by the path a reference state dict uses; loading is a lookup by that name. */
class ModuleTest {
    @TempDir Path tmp;

    static final class Block extends Module {
        final Linear proj = child("proj", new Linear(3, 2, true));
        final LayerNorm norm = child("norm", new LayerNorm(2, 1e-5));
    }

    static final class Net extends Module {
        final Embedding embed = child("embed", new Embedding(5, 3));
        final List<Block> blocks = children("blocks", List.of(new Block(), new Block()));
        final Param scale = param("scale", 1);
    }

    private static final List<String> NAMES = List.of("scale", "embed.weight",
            "blocks.0.proj.weight", "blocks.0.proj.bias", "blocks.0.norm.weight", "blocks.0.norm.bias",
            "blocks.1.proj.weight", "blocks.1.proj.bias", "blocks.1.norm.weight", "blocks.1.norm.bias");

    @Test
    void parametersAreNamedByTheirDottedPathInRegistrationOrder() {
        Net net = new Net();
        Map<String, Param> params = net.namedParameters();
        assertEquals(NAMES, new ArrayList<>(params.keySet()), "own parameters first, then each child's, lists numbered");
        assertSame(net.blocks.get(1).proj.weight, params.get("blocks.1.proj.weight"));
        assertArrayEquals(new long[] {2, 3}, params.get("blocks.0.proj.weight").shape());
        assertEquals(1 + 5 * 3 + 2 * (2 * 3 + 2 + 2 + 2), net.parameterCount());
        assertThrows(UnsupportedOperationException.class, () -> net.blocks.add(new Block()));
    }

    @Test
    void anUnloadedParameterAndAWrongShapeNameTheParameter() {
        Net net = new Net();
        net.namedParameters();
        IllegalStateException unloaded = assertThrows(IllegalStateException.class, () -> net.blocks.get(1).norm.bias.t());
        assertEquals("parameter blocks.1.norm.bias was never loaded or initialised", unloaded.getMessage());
        assertFalse(net.scale.isSet());
        IllegalArgumentException wrong = assertThrows(IllegalArgumentException.class,
                () -> net.blocks.get(0).proj.weight.set(Ops.zeros(3, 2)));
        assertEquals("parameter blocks.0.proj.weight: expected shape [2, 3], got [3, 2]", wrong.getMessage());
    }

    @Test
    void aStateDictRoundTripsThroughSafetensorsUnderAPrefix() throws IOException {
        Net saved = new Net();
        Weights.initRandom(saved, 11);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        saved.namedParameters().forEach((name, p) -> tensors.put("model." + name, p.t()));
        Path file = tmp.resolve("net.safetensors");
        Safetensors.write(file, tensors, Map.of(), Safetensors.StoredType.F32);

        Net loaded = new Net();
        Weights.load(loaded, Safetensors.open(file), "model.", Ops.cpu(), torch.ScalarType.Float, "test net");
        for (String name : NAMES) {
            assertArrayEquals(Ops.toFloats(saved.namedParameters().get(name).t()), Ops.toFloats(loaded.namedParameters().get(name).t()), name);
        }
        Net half = new Net();
        Weights.load(half, Safetensors.open(file), "model.", Ops.cpu(), torch.ScalarType.Half, "test net");
        assertEquals(torch.ScalarType.Half.value, half.embed.weight.t().scalar_type().value);
        // the loaded module computes what the saved one does
        try (Scope s = Scope.inference()) {
            Tensor x = Ops.fromFloats(new float[] {1, -1, 0.5f}, 1, 3);
            assertArrayEquals(Ops.toFloats(saved.blocks.get(0).proj.forward(x)), Ops.toFloats(loaded.blocks.get(0).proj.forward(x)));
        }
    }

    @Test
    void missingTensorsAreListedAndNothingIsLoaded() throws IOException {
        Net source = new Net();
        Weights.initRandom(source, 1);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        source.namedParameters().forEach((name, p) -> {
            if (!name.startsWith("blocks.")) tensors.put(name, p.t());
        });
        Path file = tmp.resolve("partial.safetensors");
        Safetensors.write(file, tensors, Map.of(), Safetensors.StoredType.F32);
        Net target = new Net();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Weights.load(target, Safetensors.open(file), "", Ops.cpu(), torch.ScalarType.Float, "test net"));
        assertEquals("cannot load the test net: 8 of 10 tensors are missing (blocks.0.proj.weight, blocks.0.proj.bias, "
                + "blocks.0.norm.weight, blocks.0.norm.bias, blocks.1.proj.weight, ...)", e.getMessage());
        assertFalse(target.scale.isSet(), "all or nothing: the tensors present were not loaded either");
    }

    @Test
    void aWrongShapeNamesTheFileTheTensorAndBothShapes() throws IOException {
        Net source = new Net();
        Weights.initRandom(source, 1);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        source.namedParameters().forEach((name, p) -> tensors.put(name, p.t()));
        tensors.put("blocks.1.proj.weight", Ops.zeros(2, 4));
        Path file = tmp.resolve("wrong.safetensors");
        Safetensors.write(file, tensors, Map.of(), Safetensors.StoredType.F32);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Weights.load(new Net(), Safetensors.open(file), "", Ops.cpu(), torch.ScalarType.Float, "test net"));
        assertEquals("cannot load the test net:\n  " + file + " tensor 'blocks.1.proj.weight' has shape [2, 4], "
                + "the test net config expects [2, 3]", e.getMessage());
    }

    @Test
    void randomInitialisationIsSeededAndScaledByFanIn() {
        Linear a = new Linear(256, 64, true), b = new Linear(256, 64, true), c = new Linear(256, 64, true);
        Weights.initRandom(a, 5);
        Weights.initRandom(b, 5);
        Weights.initRandom(c, 6);
        assertArrayEquals(Ops.toFloats(a.weight.t()), Ops.toFloats(b.weight.t()), "same seed, same weights");
        assertFalse(java.util.Arrays.equals(Ops.toFloats(a.weight.t()), Ops.toFloats(c.weight.t())));
        assertEquals(1 / Math.sqrt(256), Ops.item(a.weight.t().std()), 0.05 / Math.sqrt(256), "N(0, 1/fan_in)");
        assertEquals(0, Ops.maxAbs(a.bias.t()), "biases 0");
        LayerNorm norm = new LayerNorm(8, 1e-5);
        Weights.initRandom(norm, 5);
        assertArrayEquals(new float[] {1, 1, 1, 1, 1, 1, 1, 1}, Ops.toFloats(norm.weight.t()), "norm weights 1");
        Module embeddings = new Module() {
            final Embedding tokenEmbedding = child("token_embedding", new Embedding(1000, 64));
        };
        Weights.initRandom(embeddings, 5);
        assertEquals(0.02, Ops.item(embeddings.namedParameters().get("token_embedding.weight").t().std()), 0.001, "embeddings N(0, 0.02^2)");
    }
}
