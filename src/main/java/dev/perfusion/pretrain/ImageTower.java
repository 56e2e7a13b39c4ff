package dev.perfusion.pretrain;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.perfusion.io.ConfigJson;
import dev.perfusion.io.Safetensors;
import dev.perfusion.nn.Conv2d;
import dev.perfusion.nn.GroupNorm;
import dev.perfusion.nn.Linear;
import dev.perfusion.nn.Module;
import dev.perfusion.nn.Weights;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The image half of the world's CLIP: a small CNN in place of CLIP's ViT, for 64x64 world pictures.
 * <pre>
 *   picture [B, 3, 64, 64] in [-1, 1]
 *   conv_in 3x3                                  -> [B, c0, 64, 64]
 *   blocks.i: GroupNorm, SiLU, conv 3x3 stride 2 -> [B, c(i+1), 64 / 2^(i+1), ...]
 *   norm_out, SiLU, mean over the pixels         -> [B, c_last]
 *   visual_projection (no bias)                  -> [B, projection_dim]
 * </pre>
 */
public final class ImageTower extends Module {
    /** {@code channels}: c0, c1, ... (one stride-2 block per step); GroupNorm groups; the shared embedding's size. */
    public record Config(List<Integer> channels, int groups, int projectionDim) {
        public ObjectNode toJson() {
            ObjectNode n = new ObjectMapper().createObjectNode();
            n.put("_class_name", "WorldImageTower");
            channels.forEach(n.putArray("block_out_channels")::add);
            n.put("norm_num_groups", groups);
            n.put("projection_dim", projectionDim);
            return n;
        }

        public static Config load(Path folder) throws IOException {
            Path file = ConfigJson.file(folder, "config.json", "image tower config");
            return ConfigJson.parse(ConfigJson.read(file), "image tower config", file, c -> new Config(
                    c.requiredIntegers("block_out_channels"), c.integer("norm_num_groups", 8), c.requiredInteger("projection_dim")));
        }
    }

    /** GroupNorm, SiLU, a 3x3 convolution that halves the picture. */
    static final class DownBlock extends Module {
        final GroupNorm norm;
        final Conv2d conv;

        DownBlock(int groups, int in, int out) {
            this.norm = child("norm", new GroupNorm(groups, in, 1e-5));
            this.conv = child("conv", new Conv2d(in, out, 3, 2, 1));
        }

        Tensor forward(Tensor x) {
            return conv.forward(Ops.silu(norm.forward(x)));
        }
    }

    private final Config config;
    private final Conv2d convIn;
    private final List<DownBlock> blocks;
    private final GroupNorm normOut;
    private final Linear visualProjection;

    public ImageTower(Config config) {
        this.config = config;
        List<Integer> c = config.channels();
        this.convIn = child("conv_in", new Conv2d(3, c.get(0), 3, 1, 1));
        List<DownBlock> b = new ArrayList<>();
        for (int i = 0; i + 1 < c.size(); i++) b.add(new DownBlock(config.groups(), c.get(i), c.get(i + 1)));
        this.blocks = children("blocks", b);
        this.normOut = child("norm_out", new GroupNorm(config.groups(), c.get(c.size() - 1), 1e-5));
        this.visualProjection = child("visual_projection", new Linear(c.get(c.size() - 1), config.projectionDim(), false));
        namedParameters();
    }

    public Config config() { return config; }

    /** image_embeds: pictures [B, 3, H, W] in [-1, 1] -> [B, projection_dim] (not normalised). */
    public Tensor imageEmbeds(Tensor pictures) {
        Tensor h = convIn.forward(pictures);
        for (DownBlock block : blocks) h = block.forward(h);
        h = Ops.silu(normOut.forward(h));
        Tensor pooled = Ops.mean(Ops.mean(h, 3, false), 2, false);
        return visualProjection.forward(pooled);
    }

    /** An image tower folder as {@link ContrastiveStage} writes it: {@code config.json} and {@code model.safetensors}. */
    public static ImageTower load(Path folder) throws IOException {
        ImageTower tower = new ImageTower(Config.load(folder));
        Weights.load(tower, Safetensors.open(folder.resolve("model.safetensors")), "", Ops.cpu(), torch.ScalarType.Float, "image tower");
        return tower;
    }
}
