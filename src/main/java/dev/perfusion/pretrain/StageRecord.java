package dev.perfusion.pretrain;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.perfusion.io.AtomicFiles;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The parts of the recipe that a finished stage's result was trained with, kept beside it in the work folder. A
 * finished stage is used as it is, so a rerun whose recipe would train it otherwise (more steps, another rate) must be
 * refused: else the old result goes on under the new recipe's name. Folders finished before the record are taken as they are.
 */
record StageRecord(String stage, String file, List<String> parts, List<String> results) {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** The contrastive stage's text and image towers. */
    static final StageRecord TOWERS = new StageRecord("contrastive", "towers-recipe.json",
            List.of("textHidden", "textLayers", "textHeads", "textMaxLength", "captionDetails", "seed", "contrastive"),
            List.of(ContrastiveStage.TEXT_FOLDER, ContrastiveStage.IMAGE_FOLDER));
    /** The VAE stage's {@code vae/}. */
    static final StageRecord VAE = new StageRecord("VAE", "vae-recipe.json",
            List.of("imageSize", "vaeChannels", "vaeGroups", "latentChannels", "vaeSteps", "vaeBatch", "vaeLr", "seed"), List.of("vae"));
    /** The decoder stage's {@code vae-decoder/}, trained on the VAE stage's encoder. */
    static final StageRecord DECODER = new StageRecord("decoder", "decoder-recipe.json",
            List.of("imageSize", "vaeChannels", "vaeGroups", "latentChannels", "vaeBatch", "vaeLr", "decoderSteps", "decoderAdversarialWeight", "decoderCriticAlone", "seed"),
            List.of("vae-decoder"));

    /** The recipe's parts this stage reads (those a recipe leaves out at their default stay out). */
    ObjectNode of(BaseModelRecipe recipe) {
        ObjectNode all = JSON.valueToTree(recipe), kept = JSON.createObjectNode();
        for (String part : parts) {
            if (all.has(part)) kept.set(part, all.get(part));
        }
        return kept;
    }

    /** Written before the stage's result, so that a result is never without its record once both exist. */
    void write(Path work, BaseModelRecipe recipe) throws IOException {
        AtomicFiles.write(work.resolve(file), JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(of(recipe)));
    }

    /** Refuses a finished stage in {@code work} that {@code recipe} would have trained otherwise, naming the difference. */
    void checkDoneAs(Path work, BaseModelRecipe recipe) throws IOException {
        Path record = work.resolve(file);
        if (!Files.isRegularFile(record)) return;
        List<String> differ = BaseModelRecipe.differences(Files.readString(record), of(recipe));
        if (!differ.isEmpty()) {
            String remove = String.join(", ", results.stream().map(r -> work.resolve(r) + "/").toList()) + " and " + work.resolve(file);
            throw new IOException(work + ": its " + stage + " stage finished with another recipe (" + String.join("; ", differ)
                    + "): give the options it was started with to use its result; to train that stage anew, remove " + remove
                    + " (or use another work folder)");
        }
    }
}
