package dev.perfusion.training;

import java.util.List;

/** The concept methods this program trains, Perfusion first; a new method is registered here. */
public final class ConceptMethods {
    private ConceptMethods() {}

    public static final ConceptMethod PERFUSION = new PerfusionMethod();

    public static final List<ConceptMethod> ALL = List.of(PERFUSION, new TrainedKeysMethod(), new UngatedRankOneMethod(),
            new TextualInversionMethod(), new KvFineTuneMethod());

    public static List<String> ids() { return ALL.stream().map(ConceptMethod::id).toList(); }

    /** The method named {@code id}, or an error listing the known ones. */
    public static ConceptMethod byId(String id) {
        return ALL.stream().filter(m -> m.id().equals(id)).findFirst().orElseThrow(() -> new IllegalArgumentException(
                "unknown concept method '" + id + "'; known: " + String.join(", ", ids())));
    }
}
