package dev.perfusion.pretrain;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.perfusion.io.ConfigJson;
import dev.perfusion.io.Safetensors;
import dev.perfusion.nn.Conv2d;
import dev.perfusion.nn.GroupNorm;
import dev.perfusion.nn.Linear;
import dev.perfusion.nn.Module;
import dev.perfusion.nn.Param;
import dev.perfusion.nn.Weights;
import dev.perfusion.tensor.Ops;
import dev.perfusion.vae.ResnetBlock2D;
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
 *     then, with layers_per_block n, n residual blocks (the VAE's ResnetBlock2D: GroupNorm, SiLU, conv 3x3, twice, plus the input)
 *   norm_out, SiLU, mean over the pixels         -> [B, c_last]
 *     or, with attention_pool_side s, CLIP ResNet's attention pool: the mean and the s x s pixels, each with a
 *     learned position embedding, read by one query from the mean (4 heads), so that where a thing is counts
 *   visual_projection (no bias)                  -> [B, projection_dim]
 * </pre>
 * Mean pooling adds up what each region shows wherever it is: a dog on the left and a car on the right embed nearly as
 * the car on the left and the dog on the right, so the contrastive loss cannot ask captions to say which is where.
 * Without residual blocks each 8x8 feature is four convolutions deep and sees 17x17 pixels: enough for an object's kind
 * and colours, not for which accessory it wears (a few pixels whose shape tells a bow from a collar).
 */
public final class ImageTower extends Module {
    /** {@code channels}: c0, c1, ... (one stride-2 block per step); GroupNorm groups; the shared embedding's size. */
    public record Config(List<Integer> channels, int groups, int projectionDim, int attentionPoolSide, int layersPerBlock) {
        public Config(List<Integer> channels, int groups, int projectionDim) {
            this(channels, groups, projectionDim, 0, 0);
        }

        public ObjectNode toJson() {
            ObjectNode n = new ObjectMapper().createObjectNode();
            n.put("_class_name", "WorldImageTower");
            channels.forEach(n.putArray("block_out_channels")::add);
            n.put("norm_num_groups", groups);
            n.put("projection_dim", projectionDim);
            if (attentionPoolSide > 0) n.put("attention_pool_side", attentionPoolSide);
            if (layersPerBlock > 0) n.put("layers_per_block", layersPerBlock);
            return n;
        }

        public static Config load(Path folder) throws IOException {
            Path file = ConfigJson.file(folder, "config.json", "image tower config");
            return ConfigJson.parse(ConfigJson.read(file), "image tower config", file, c -> new Config(
                    c.requiredIntegers("block_out_channels"), c.integer("norm_num_groups", 8), c.requiredInteger("projection_dim"),
                    c.integer("attention_pool_side", 0), c.integer("layers_per_block", 0)));
        }
    }

    /** CLIP ResNet's AttnPool2d: the mean pixel attends, with 4 heads, to itself and every pixel, each plus its position's embedding. */
    static final class AttentionPool extends Module {
        private static final int HEADS = 4;
        final Param positions;
        final Linear q, k, v, out;

        AttentionPool(int side, int channels) {
            this.positions = param("positional_embedding", side * side + 1, channels);
            this.q = child("q_proj", new Linear(channels, channels, true));
            this.k = child("k_proj", new Linear(channels, channels, true));
            this.v = child("v_proj", new Linear(channels, channels, true));
            this.out = child("c_proj", new Linear(channels, channels, true));
        }

        /** x [B, C, s, s] -> [B, C] */
        Tensor forward(Tensor x) {
            long[] s = Ops.shape(x);
            Tensor pixels = x.flatten(2, -1).transpose(1, 2);                            // [B, s*s, C]
            Tensor tokens = Ops.add(Ops.cat(1, Ops.mean(pixels, 1, true), pixels), positions.t()); // [B, 1 + s*s, C]
            long headDim = s[1] / HEADS;
            Tensor query = heads(q.forward(tokens.narrow(1, 0, 1)), headDim), keys = heads(k.forward(tokens), headDim),
                    values = heads(v.forward(tokens), headDim);
            Tensor attended = Ops.attention(query, keys, values, null, 1.0 / Math.sqrt(headDim)); // [B, heads, 1, d]
            return out.forward(attended.transpose(1, 2).reshape(s[0], s[1]));
        }

        /** [B, N, C] -> [B, heads, N, C / heads] */
        private static Tensor heads(Tensor t, long headDim) {
            long[] s = Ops.shape(t);
            return t.reshape(s[0], s[1], HEADS, headDim).transpose(1, 2);
        }
    }

    /** GroupNorm, SiLU, a 3x3 convolution that halves the picture; then the residual blocks at the new size. */
    static final class DownBlock extends Module {
        final GroupNorm norm;
        final Conv2d conv;
        final List<ResnetBlock2D> residuals;

        DownBlock(int groups, int in, int out, int layers) {
            this.norm = child("norm", new GroupNorm(groups, in, 1e-5));
            this.conv = child("conv", new Conv2d(in, out, 3, 2, 1));
            List<ResnetBlock2D> r = new ArrayList<>();
            for (int i = 0; i < layers; i++) r.add(new ResnetBlock2D(out, out, groups, 1e-5));
            this.residuals = children("resnets", r);
        }

        Tensor forward(Tensor x) {
            Tensor h = conv.forward(Ops.silu(norm.forward(x)));
            for (ResnetBlock2D r : residuals) h = r.forward(h);
            return h;
        }
    }

    private final Config config;
    private final Conv2d convIn;
    private final List<DownBlock> blocks;
    private final GroupNorm normOut;
    /** Null for mean pooling. */
    private final AttentionPool attentionPool;
    private final Linear visualProjection;

    public ImageTower(Config config) {
        this.config = config;
        List<Integer> c = config.channels();
        this.convIn = child("conv_in", new Conv2d(3, c.get(0), 3, 1, 1));
        List<DownBlock> b = new ArrayList<>();
        for (int i = 0; i + 1 < c.size(); i++) b.add(new DownBlock(config.groups(), c.get(i), c.get(i + 1), config.layersPerBlock()));
        this.blocks = children("blocks", b);
        this.normOut = child("norm_out", new GroupNorm(config.groups(), c.get(c.size() - 1), 1e-5));
        this.attentionPool = config.attentionPoolSide() > 0 ? child("attention_pool", new AttentionPool(config.attentionPoolSide(), c.get(c.size() - 1))) : null;
        this.visualProjection = child("visual_projection", new Linear(c.get(c.size() - 1), config.projectionDim(), false));
        namedParameters();
    }

    public Config config() { return config; }

    /** image_embeds: pictures [B, 3, H, W] in [-1, 1] -> [B, projection_dim] (not normalised). */
    public Tensor imageEmbeds(Tensor pictures) {
        Tensor h = convIn.forward(pictures);
        for (DownBlock block : blocks) h = block.forward(h);
        h = Ops.silu(normOut.forward(h));
        Tensor pooled = attentionPool != null ? attentionPool.forward(h) : Ops.mean(Ops.mean(h, 3, false), 2, false);
        return visualProjection.forward(pooled);
    }

    /** An image tower folder as {@link ContrastiveStage} writes it: {@code config.json} and {@code model.safetensors}. */
    public static ImageTower load(Path folder) throws IOException {
        ImageTower tower = new ImageTower(Config.load(folder));
        Weights.load(tower, Safetensors.open(folder.resolve("model.safetensors")), "", Ops.cpu(), torch.ScalarType.Float, "image tower");
        return tower;
    }
}
