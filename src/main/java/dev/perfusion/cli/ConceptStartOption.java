package dev.perfusion.cli;

import dev.perfusion.perfusion.Concept;
import picocli.CommandLine.Option;

/**
 * How many of a picture's denoising steps the base model draws before the concepts take over (a mixin of
 * {@code generate} and {@code eval}): the layout first, then the concepts ({@code AppliedConcepts.startingAt}).
 */
final class ConceptStartOption {
    @Option(names = "--concept-start", paramLabel = "FRACTION", defaultValue = "" + Concept.GENERATION_CONCEPT_START,
            description = "The fraction of the denoising steps that the base model draws with each concept's supercategory word "
                    + "before the concepts take over: it lays the picture out (how many objects, where), so that a concept is "
                    + "drawn once, where the prompt puts it; 0 is the paper's, every step with the concepts (default: ${DEFAULT-VALUE}).")
    double fraction;

    /** The fraction; fails, naming the option, before any model is loaded. */
    double check() {
        return Flags.named("--concept-start", () -> Concept.checkConceptStart(fraction));
    }
}
