package dev.perfusion.pipeline;

import dev.perfusion.nn.Downsample2D;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.unet.Attention;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.util.function.Consumer;

/**
 * Where pixels read each token of the text: the probabilities of every cross-attention pass of the UNet while this is
 * open, averaged over heads, layers and passes (a picture's denoising steps), each layer's map brought to the latent
 * resolution. A pixel's probabilities over the tokens sum to one, so a token's map is the share of that pixel's value
 * which comes from the token. Only the last {@code rows} rows of each batch are kept: the prompts of a guided batch
 * [negatives; prompts]. Observing replaces the fused attention kernel with an explicit softmax (slower); only the
 * observing thread's passes are seen (pictures drawn side by side on other threads are not).
 */
public final class CrossAttentionMaps implements AutoCloseable {
    private final int rows;
    private final long height, width;
    /** The sum of every pass's maps [rows, tokens, height, width], kept past the passes' scopes. */
    private Tensor sum;
    private int passes;

    /** The observer of this thread's cross-attention that these maps replace until {@link #close}. */
    private final Consumer<Tensor> outer;
    private boolean closed;

    private CrossAttentionMaps(int rows, long height, long width) {
        this.rows = rows;
        this.height = height;
        this.width = width;
        this.outer = Attention.observeCrossAttention(this::add);
    }

    /**
     * Starts observing every cross-attention pass of this thread, until {@link #close}, for latents of {@code height} x
     * {@code width}.
     */
    public static CrossAttentionMaps observe(int rows, long height, long width) {
        return new CrossAttentionMaps(rows, height, width);
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
        if (!closed) Attention.observeCrossAttention(outer);
        closed = true;
        if (sum != null) sum.releaseReference();
        sum = null;
    }
}
