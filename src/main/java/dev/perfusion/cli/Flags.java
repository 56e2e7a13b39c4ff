package dev.perfusion.cli;

import dev.perfusion.io.layout.ModelInputException;

import java.util.function.Supplier;

/**
 * The library's errors in the command line's words: the library says what was wrong in its own terms, and the
 * command adds the flag that gave the value or that gives the missing input.
 */
final class Flags {
    private Flags() {}

    /** Runs {@code check}; a library error about the value {@code flag} gave gets the flag's name in front. */
    static <T> T named(String flag, Supplier<T> check) {
        try {
            return check.get();
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(flag + ": " + e.getMessage(), e);
        }
    }

    static void named(String flag, Runnable check) {
        named(flag, () -> {
            check.run();
            return null;
        });
    }

    /** A model loader's error with the flag of the input it asks for (after it) or is about (before it). */
    static IllegalArgumentException of(ModelInputException e) {
        String message = switch (e.input()) {
            case CONFIG_FOLDER -> e.getMessage() + " (--config DIR)";
            case TOKENIZER_FOLDER -> e.getMessage() + " (--tokenizer DIR)";
            case FAMILY -> "--family: " + e.getMessage();
        };
        return new IllegalArgumentException(message, e);
    }
}
