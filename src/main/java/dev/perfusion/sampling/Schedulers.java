package dev.perfusion.sampling;

import java.util.List;

/** Builds a scheduler by its CLI name from a model's scheduler config. */
public final class Schedulers {
    public static final List<String> NAMES = List.of("ddim", "euler", "euler-a", "dpmpp-2m", "pndm");

    private Schedulers() {}

    public static Scheduler create(String name, SchedulerConfig config) {
        return switch (name) {
            case "ddim" -> new DdimScheduler(config, 0.0);
            case "euler" -> new EulerScheduler(config, false);
            case "euler-a" -> new EulerScheduler(config, true);
            case "dpmpp-2m" -> new DpmSolverMultistepScheduler(config);
            case "pndm" -> new PndmScheduler(config);
            default -> throw new IllegalArgumentException("unknown scheduler '" + name + "': choose one of " + String.join(", ", NAMES));
        };
    }
}
