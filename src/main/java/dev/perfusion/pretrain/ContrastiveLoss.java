package dev.perfusion.pretrain;

import dev.perfusion.nn.Module;
import dev.perfusion.nn.Param;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * CLIP's symmetric contrastive loss (InfoNCE over the batch) with its learned temperature: row i of the batch is a
 * picture and its caption, every other row a negative, in both directions.
 */
public final class ContrastiveLoss extends Module {
    /** CLIP's initial temperature 0.07, as the log of its inverse. */
    static final double INITIAL_LOGIT_SCALE = Math.log(1 / 0.07);
    /** CLIP clamps the logit scale at 100, so the softmax cannot sharpen without bound. */
    static final double MAX_SCALE = 100;

    final Param logitScale;

    ContrastiveLoss() {
        this.logitScale = param("logit_scale", 1);
    }

    void initialise() {
        try (Scope s = Scope.inference()) {
            logitScale.set(Ops.fromFloats(new float[] {(float) INITIAL_LOGIT_SCALE}, 1));
        }
    }

    /** exp(logit_scale), clamped at 100. */
    double scale() {
        return Math.min(MAX_SCALE, Math.exp(Ops.item(logitScale.t())));
    }

    /** (CE(logits_per_image) + CE(logits_per_text)) / 2 of [B, D] text and image embeddings (not yet normalised). */
    Tensor forward(Tensor textEmbeds, Tensor imageEmbeds) {
        return forward(textEmbeds, imageEmbeds, null);
    }

    /**
     * The same with {@code negativeEmbeds} [N, D] (or null): texts that describe no picture of the batch, extra
     * wrong answers for every picture (NegCLIP's hard negatives); the caption-to-picture direction is unchanged.
     */
    Tensor forward(Tensor textEmbeds, Tensor imageEmbeds, Tensor negativeEmbeds) {
        Tensor t = Ops.unitRows(textEmbeds), v = Ops.unitRows(imageEmbeds);
        Tensor scale = torch.clamp_max(Ops.exp(logitScale.t()), new Scalar(MAX_SCALE));
        Tensor logitsPerImage = Ops.mul(Ops.matmul(v, t.t()), scale);   // [B images, B captions]
        long b = Ops.shape(logitsPerImage)[0];
        Tensor labels = torch.arange(new Scalar(b));                     // picture i goes with caption i
        Tensor withNegatives = negativeEmbeds == null ? logitsPerImage
                : Ops.cat(1, logitsPerImage, Ops.mul(Ops.matmul(v, Ops.unitRows(negativeEmbeds).t()), scale));
        Tensor imageToText = torch.cross_entropy(withNegatives, labels);
        Tensor textToImage = torch.cross_entropy(logitsPerImage.t(), labels);
        return Ops.mul(Ops.add(imageToText, textToImage), 0.5);
    }

    /** Top-1 picture-to-caption accuracy of the batch (a caption that occurs twice counts as right for both pictures). */
    public static double accuracy(Tensor textEmbeds, Tensor imageEmbeds, java.util.List<String> captions) {
        long[] best = Ops.toLongs(Ops.matmul(Ops.unitRows(imageEmbeds), Ops.unitRows(textEmbeds).t()).argmax(new org.bytedeco.pytorch.LongOptional(1), false));
        int right = 0;
        for (int i = 0; i < best.length; i++) if (captions.get((int) best[i]).equals(captions.get(i))) right++;
        return right / (double) best.length;
    }

}
