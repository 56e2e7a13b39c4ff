package dev.perfusion.pipeline;

import dev.perfusion.nn.Downsample2D;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.unet.Attention;
import dev.perfusion.unet.UNet2DConditionModel;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.util.List;

/**
 * Where pixels read each token of the text: the probabilities of every cross-attention pass of the UNet while this is
 * open, averaged over heads, layers and passes (a picture's denoising steps), each layer's map brought to the latent
 * resolution. A pixel's probabilities over the tokens sum to one, so a token's map is the share of that pixel's value
 * which comes from the token. Only the last {@code rows} rows of each batch are kept: the prompts of a guided batch
 * [negatives; prompts]. Observing replaces the fused attention kernel with an explicit softmax (slower), and the UNet
 * must not compute anything else meanwhile.
 */
public final class CrossAttentionMaps implements AutoCloseable {
    private final List<Attention> layers;
    private final int rows;
    private final long height, width;
    /** The sum of every pass's maps [rows, tokens, height, width], kept past the passes' scopes. */
    private Tensor sum;
    private int passes;

    private CrossAttentionMaps(List<Attention> layers, int rows, long height, long width) {
        this.layers = layers;
        this.rows = rows;
        this.height = height;
        this.width = width;
    }

    /** Starts observing every cross-attention layer of {@code unet}, whose latents are {@code height} x {@code width}. */
    public static CrossAttentionMaps observe(UNet2DConditionModel unet, int rows, long height, long width) {
        CrossAttentionMaps maps = new CrossAttentionMaps(unet.crossAttentionLayers(), rows, height, width);
        for (Attention a : maps.layers) a.setObserver(maps::add);
        return maps;
    }

    /** p [B, heads, queries, tokens] of one layer's pass. */
    private void add(Tensor p) {
        try (NoGradGuard ng = new NoGradGuard()) {
            long[] s = Ops.shape(p);
            long queries = s[2], tokens = s[3];
            long[] level = Downsample2D.levelSize(height, width, queries);
            Tensor perPixel = p.narrow(0, s[0] - rows, rows).to(torch.ScalarType.Float).mean(new long[] {1}, false, new ScalarTypeOptional());
            Tensor maps = perPixel.transpose(1, 2).reshape(rows, tokens, level[0], level[1]);
            Tensor atLatents = queries == height * width ? maps.contiguous()
                    : torch.upsample_bilinear2d(maps, new long[] {height, width}, false);
            sum = Scope.replaceKept(sum, sum == null ? atLatents.clone() : Ops.add(sum, atLatents));
            passes++;
        }
    }

    /** How many layer passes were observed. */
    public int passes() {
        return passes;
    }

    /** The mean map of every observed pass [rows, tokens, height, width], in the caller's scope. */
    public Tensor mean() {
        if (passes == 0) throw new IllegalStateException("no cross-attention pass was observed");
        return Ops.div(sum, passes);
    }

    @Override
    public void close() {
        for (Attention a : layers) a.setObserver(null);
        if (sum != null) sum.releaseReference();
        sum = null;
    }
}
