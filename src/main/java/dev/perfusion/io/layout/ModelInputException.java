package dev.perfusion.io.layout;

/**
 * A model that cannot be read as given, and which of the loader's inputs ({@link ModelSource.Options}) the message
 * asks for or is about, so that a front end can name its own way of giving it (a command-line flag, a form field).
 */
public final class ModelInputException extends IllegalArgumentException {
    /** The loader's inputs beside the model itself. */
    public enum Input {
        /** A diffusers folder whose config files describe the model ({@link ModelSource.Options#withConfig}). */
        CONFIG_FOLDER,
        /** A folder holding the tokenizer's vocab.json and merges.txt ({@link ModelSource.Options#withTokenizer}). */
        TOKENIZER_FOLDER,
        /** A built-in model family for a single file ({@link ModelSource.Options#withFamily}). */
        FAMILY
    }

    private final Input input;

    public ModelInputException(String message, Input input) {
        super(message);
        this.input = input;
    }

    public Input input() { return input; }
}
