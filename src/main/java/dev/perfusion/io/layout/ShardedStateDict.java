package dev.perfusion.io.layout;

import com.fasterxml.jackson.databind.JsonNode;
import dev.perfusion.io.ConfigJson;
import dev.perfusion.io.StateDict;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Weights split over several files, as listed by a {@code *.safetensors.index.json} (or, for PyTorch checkpoints,
 * {@code *.bin.index.json}) weight_map.
 */
public final class ShardedStateDict implements StateDict {
    private final Map<String, StateDict> byName;

    private ShardedStateDict(Map<String, StateDict> byName) {
        this.byName = Collections.unmodifiableMap(byName);
    }

    /** Opens every shard named by the index (headers only) and checks that each listed tensor is in its shard. */
    public static ShardedStateDict open(Path index) throws IOException {
        JsonNode map = ConfigJson.read(index).get("weight_map");
        if (map == null || !map.isObject()) throw new IOException(index + ": no weight_map object");
        Map<String, StateDict> shards = new HashMap<>();
        Map<String, StateDict> byName = new TreeMap<>();
        for (var it = map.fields(); it.hasNext(); ) {
            var e = it.next();
            String shardName = e.getValue().asText();
            StateDict shard = shards.get(shardName);
            if (shard == null) {
                Path file = index.resolveSibling(shardName).normalize();
                // a shard is a file beside its index: any other path (/dev/stdin, ../..) reads what the model is not
                if (shardName.isEmpty() || !index.toAbsolutePath().normalize().getParent().equals(file.toAbsolutePath().getParent())) {
                    throw new IOException(index + " lists tensor '" + e.getKey() + "' in '" + shardName + "', which is not a file beside the index");
                }
                if (!Files.isRegularFile(file)) {
                    throw new IOException(index + " lists tensor '" + e.getKey() + "' in " + shardName + ", which is " + (Files.exists(file) ? "not a regular file" : "missing"));
                }
                shard = WeightFile.open(file);
                shards.put(shardName, shard);
            }
            if (!shard.has(e.getKey())) {
                throw new IOException(index + " lists tensor '" + e.getKey() + "' in " + shardName + ", which does not hold it");
            }
            byName.put(e.getKey(), shard);
        }
        return new ShardedStateDict(byName);
    }

    private StateDict shard(String name) {
        StateDict s = byName.get(name);
        if (s == null) throw new IllegalArgumentException("no tensor named '" + name + "' in the sharded checkpoint");
        return s;
    }

    @Override public Set<String> keys() { return byName.keySet(); }

    @Override public Tensor get(String name) { return shard(name).get(name); }

    @Override public long[] shape(String name) { return shard(name).shape(name); }

    @Override public String dtype(String name) { return shard(name).dtype(name); }

    @Override public String describe(String name) { return shard(name).describe(name); }
}
