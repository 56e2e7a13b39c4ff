package dev.perfusion.eval;

import dev.perfusion.io.Safetensors;
import dev.perfusion.nn.Weights;
import dev.perfusion.pretrain.ContrastiveLoss;
import dev.perfusion.pretrain.ImageTower;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.text.ClipTextConfig;
import dev.perfusion.text.ClipTextModelWithProjection;
import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.world.Sample;
import dev.perfusion.world.WorldGenerator;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A CLIP of the world as a judge: the paper's own kind of scores. CLIP image similarity is the mean cosine between a
 * generated picture and each of the concept's training pictures; CLIP text similarity is the cosine between a picture
 * and its prompt with the concept word replaced by the supercategory. Its folder is what the contrastive stage of
 * {@code pretrain --recipe frozen-text} leaves: {@code tokenizer/}, {@code text_encoder/} (transformers'
 * CLIPTextModelWithProjection) and {@code image_encoder/}.
 */
public final class WorldClip {
    private final ClipTokenizer tokenizer;
    private final ClipTextModelWithProjection text;
    private final ImageTower image;

    public WorldClip(ClipTokenizer tokenizer, ClipTextModelWithProjection text, ImageTower image) {
        this.tokenizer = tokenizer;
        this.text = text;
        this.image = image;
    }

    public static WorldClip load(Path folder) throws IOException {
        for (String part : List.of("tokenizer", "text_encoder/model.safetensors", "image_encoder/model.safetensors")) {
            if (!Files.exists(folder.resolve(part))) {
                throw new IOException("no world CLIP at " + folder + ": " + part + " is missing (train one with `perfusion judges --only clip`)");
            }
        }
        ClipTextModelWithProjection text = ClipTextModelWithProjection.create(ClipTextConfig.load(folder.resolve("text_encoder")));
        Weights.load(text, Safetensors.open(folder.resolve("text_encoder/model.safetensors")), "", Ops.cpu(), torch.ScalarType.Float,
                "world CLIP text tower");
        return new WorldClip(ClipTokenizer.load(folder.resolve("tokenizer")), text, ImageTower.load(folder.resolve("image_encoder")));
    }

    /** Unit-length image embeddings of pictures [B, 3, H, W] in [-1, 1]. */
    public Tensor imageEmbeds(Tensor pictures) {
        try (Scope s = Scope.inference()) {
            return Scope.keep(Ops.unitRows(image.imageEmbeds(pictures)));
        }
    }

    /** Unit-length text embeddings of captions. */
    public Tensor textEmbeds(List<String> captions) {
        try (Scope s = Scope.inference()) {
            return Scope.keep(Ops.unitRows(text.textEmbeds(tokenizer.idsForModel(captions))));
        }
    }

    /** CLIP-I of each picture: its mean cosine to the reference pictures' embeddings ({@link #imageEmbeds}, [R, D]). */
    public double[] imageSimilarity(Tensor pictures, Tensor referenceEmbeds) {
        try (Scope s = Scope.inference()) {
            return Ops.toDoubles(Ops.mean(Ops.matmul(Scope.adopt(imageEmbeds(pictures)), referenceEmbeds.t()), 1, false));
        }
    }

    /** CLIP-T of each picture against the caption of the same row. */
    public double[] textSimilarity(Tensor pictures, List<String> captions) {
        if (Ops.shape(pictures)[0] != captions.size()) {
            throw new IllegalArgumentException(Ops.shape(pictures)[0] + " pictures but " + captions.size() + " captions");
        }
        try (Scope s = Scope.inference()) {
            // adopted: freed with this scope, not left to the GC once per scored batch
            return Ops.toDoubles(Ops.sum(Ops.mul(Scope.adopt(imageEmbeds(pictures)), Scope.adopt(textEmbeds(captions))), 1, false));
        }
    }

    /**
     * How well it reads world pictures it never saw: the mean cosine of a picture to its own caption and to the next
     * picture's, and the fraction whose own caption is the most similar of the batch (a caption that occurs twice counts
     * for both pictures).
     */
    public record Agreement(int pictures, double ownCaption, double otherCaption, double topOne) {}

    public Agreement agreement(int count, long seed) {
        WorldGenerator world = new WorldGenerator();
        List<Sample> samples = new ArrayList<>();
        for (int i = 0; i < count; i++) samples.add(world.sample(seed + i));
        List<String> captions = samples.stream().map(Sample::caption).toList();
        try (Scope s = Scope.inference()) {
            Tensor images = Scope.adopt(imageEmbeds(AttributeClassifier.pictures(samples))), texts = Scope.adopt(textEmbeds(captions));
            Tensor similarity = Ops.matmul(images, texts.t());   // [pictures, captions]
            double own = Ops.item(similarity.diagonal().mean()), other = Ops.item(similarity.diagonal(1, 0, 1).mean());
            return new Agreement(count, own, other, ContrastiveLoss.accuracy(texts, images, captions));
        }
    }
}
