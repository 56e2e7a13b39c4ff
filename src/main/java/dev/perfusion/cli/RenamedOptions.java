package dev.perfusion.cli;

import java.util.Map;
import java.util.Optional;

/**
 * Options of perfusion 0.1 that have another name now, by command, so that an old script's option is answered
 * with its new name: --steps is the denoising steps in every command and --train-steps the training steps; one
 * name serves both one value and several (--beta, --method); train's loss mask is --mask, as in eval.
 */
final class RenamedOptions {
    private RenamedOptions() {}

    private static final Map<String, Map<String, String>> BY_COMMAND = Map.of(
            "train", Map.of("--steps", "--train-steps", "--masks", "--mask DIR", "--mask-from-attention", "--mask attention",
                    "--train-keys", "--method trained-keys"),
            "eval", Map.of("--steps", "--train-steps", "--betas", "--beta", "--methods", "--method"),
            "demo", Map.of("--sampling-steps", "--steps", "--write-bundle", "the command demo-bundle"),
            "pretrain", Map.of("--steps", "--train-steps"),
            "judges", Map.of("--dir", "--out"),
            "prompt-following", Map.of("--samples", "--count"));

    /** "--old is --new now" where {@code arg} (alone or as --old=value) is a renamed option of {@code command}. */
    static Optional<String> hint(String command, String arg) {
        String name = arg.contains("=") ? arg.substring(0, arg.indexOf('=')) : arg;
        return Optional.ofNullable(BY_COMMAND.getOrDefault(command, Map.of()).get(name)).map(now -> name + " is " + now + " now");
    }
}
