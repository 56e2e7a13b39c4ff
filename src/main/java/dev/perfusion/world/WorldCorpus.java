package dev.perfusion.world;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.perfusion.perfusion.CaptionCorpus;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The caption corpus a model's input covariance is estimated from. A base model pretrained on this world (the
 * bundled one, or any folder `perfusion pretrain` wrote: its {@code recipe.json} says so) takes the generic corpus
 * with every third caption one of the world's training captions, the text its encoder learned from; every other
 * model takes the generic corpus alone.
 */
public final class WorldCorpus {
    /** How the {@code what} field of a world base model's {@code recipe.json} begins. */
    static final String BASE_MODEL_RECIPE = "perfusion world base model";

    private WorldCorpus() {}

    /** The generic corpus mixed with the world's training captions. */
    public static CaptionCorpus world() {
        return CaptionCorpus.generic().mixedWith("world", WorldGenerator::trainingCaption);
    }

    /** The corpus for the model at {@code model} (a diffusers folder or a single file). */
    public static CaptionCorpus forModel(Path model) throws IOException {
        return isWorldBaseModel(model) ? world() : CaptionCorpus.generic();
    }

    /** Whether {@code model} is a folder holding the recipe of a base model pretrained on this world. */
    public static boolean isWorldBaseModel(Path model) throws IOException {
        Path recipe = model.resolve("recipe.json");
        if (!Files.isDirectory(model) || !Files.isRegularFile(recipe)) return false;
        JsonNode what;
        try {
            what = new ObjectMapper().readTree(recipe.toFile()).path("what");
        } catch (IOException e) {
            throw new IOException(recipe + ": not readable as JSON: " + e.getMessage(), e);
        }
        return what.isTextual() && what.asText().startsWith(BASE_MODEL_RECIPE);
    }
}
