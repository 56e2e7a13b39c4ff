package dev.perfusion.cli;

import dev.perfusion.pipeline.SideSteering;
import picocli.CommandLine.Option;

/** How strongly each object is drawn on the side its prompt puts it (a mixin of the commands that draw pictures). */
final class SideSteeringOption {
    @Option(names = "--side-steering", paramLabel = "S", defaultValue = "" + SideSteering.DEFAULT_STRENGTH,
            description = "Draw each object on the side the prompt puts it (\"a cat on the left and a dog on the right\"): in the "
                    + "first steps its words' cross-attention logits gain S on their own half of the picture and lose S on the "
                    + "other; 0 draws as the model does alone (default: ${DEFAULT-VALUE}).")
    double strength;

    /** The strength; fails, naming the option, before any model is loaded. */
    double check() {
        return Flags.named("--side-steering", () -> SideSteering.checkStrength(strength));
    }
}
