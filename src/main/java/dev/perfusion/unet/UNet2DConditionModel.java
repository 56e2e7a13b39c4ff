package dev.perfusion.unet;

import dev.perfusion.nn.Conv2d;
import dev.perfusion.nn.GroupNorm;
import dev.perfusion.nn.Module;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * diffusers' UNet2DConditionModel, built from its config: predicts the noise (or v) in a latent, conditioned on
 * a timestep and on text encodings through cross-attention at every level that has it.
 */
public final class UNet2DConditionModel extends Module {
    private final UNetConfig config;
    private final Conv2d convIn;
    private final TimestepEmbedding timeEmbedding;
    private final List<DownBlock2D> downBlocks;
    private final UNetMidBlock2DCrossAttn midBlock;
    private final List<UpBlock2D> upBlocks;
    private final GroupNorm convNormOut;
    private final Conv2d convOut;

    private UNet2DConditionModel(UNetConfig c) {
        this.config = c;
        List<Integer> ch = c.blockOutChannels();
        this.convIn = child("conv_in", new Conv2d(c.inChannels(), ch.get(0), 3, 1, 1));
        TimestepEmbedding te = new TimestepEmbedding(ch.get(0), c.timeEmbedDim(), c.flipSinToCos(), c.freqShift());
        this.timeEmbedding = child("time_embedding", te);

        List<DownBlock2D> down = new ArrayList<>();
        long out = ch.get(0);
        for (int i = 0; i < c.levels(); i++) {
            long in = out;
            out = ch.get(i);
            down.add(new DownBlock2D(c, i, in, out, c.downBlockTypes().get(i).startsWith("CrossAttn"), i < c.levels() - 1));
        }
        this.downBlocks = children("down_blocks", down);
        this.midBlock = c.midBlockType() == null ? null : child("mid_block", new UNetMidBlock2DCrossAttn(c));

        List<Integer> reversed = new ArrayList<>(ch);
        Collections.reverse(reversed);
        List<UpBlock2D> up = new ArrayList<>();
        out = reversed.get(0);
        for (int i = 0; i < c.levels(); i++) {
            long prevOut = out;
            out = reversed.get(i);
            long in = reversed.get(Math.min(i + 1, c.levels() - 1));
            up.add(new UpBlock2D(c, i, in, out, prevOut, c.upBlockTypes().get(i).startsWith("CrossAttn"), i < c.levels() - 1));
        }
        this.upBlocks = children("up_blocks", up);
        this.convNormOut = child("conv_norm_out", new GroupNorm(c.normNumGroups(), ch.get(0), c.normEps()));
        this.convOut = child("conv_out", new Conv2d(ch.get(0), c.outChannels(), 3, 1, 1));
    }

    /** The model's structure; weights stay unset until {@code Weights.load} or {@code Weights.initRandom}. */
    public static UNet2DConditionModel create(UNetConfig config) {
        return new UNet2DConditionModel(config);
    }

    public UNetConfig config() { return config; }

    /**
     * @param sample    noisy latents [B, C, H, W]
     * @param timesteps [B] or [1] (broadcast to the batch), float
     * @param text      text encodings [B, T, D]
     */
    public Tensor forward(Tensor sample, Tensor timesteps, Tensor text) {
        long batch = Ops.shape(sample)[0];
        if (timesteps.dim() == 0) timesteps = timesteps.reshape(1);
        if (Ops.shape(timesteps)[0] != batch) timesteps = timesteps.expand(batch);
        if (config.centerInputSample()) sample = Ops.add(Ops.mul(sample, 2.0), -1.0);

        Tensor emb = timeEmbedding.forward(timesteps, sample.scalar_type());
        Tensor h = convIn.forward(sample);
        List<Tensor> skips = new ArrayList<>();
        skips.add(h);
        for (DownBlock2D block : downBlocks) h = block.forward(h, emb, text, skips);
        if (midBlock != null) h = midBlock.forward(h, emb, text);
        for (UpBlock2D block : upBlocks) h = block.forward(h, emb, text, skips);
        return convOut.forward(Ops.silu(convNormOut.forward(h)));
    }

    /** Every cross-attention (attn2) layer, in state-dict order: down blocks, mid block, up blocks. */
    public List<Attention> crossAttentionLayers() {
        List<Attention> out = new ArrayList<>();
        for (DownBlock2D b : downBlocks) collect(b.attentions, out);
        if (midBlock != null) collect(midBlock.attentions, out);
        for (UpBlock2D b : upBlocks) collect(b.attentions, out);
        return out;
    }

    private static void collect(List<Transformer2DModel> transformers, List<Attention> out) {
        for (Transformer2DModel t : transformers) for (BasicTransformerBlock block : t.blocks) out.add(block.attn2);
    }
}
