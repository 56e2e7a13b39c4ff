package dev.perfusion.sampling;

import java.util.List;
import java.util.stream.Stream;

/** Builds a scheduler by its name (a request's, the command line's) from a model's scheduler config. */
public final class Schedulers {
    /** The schedulers, each with the name requests give it. */
    public enum Kind {
        DDIM("ddim"), EULER("euler"), EULER_A("euler-a"), DPMPP_2M("dpmpp-2m"), PNDM("pndm");

        public final String id;

        Kind(String id) {
            this.id = id;
        }
    }

    public static final List<String> NAMES = Stream.of(Kind.values()).map(k -> k.id).toList();

    private Schedulers() {}

    public static Scheduler create(String name, SchedulerConfig config) {
        return switch (kind(name)) {
            case DDIM -> new DdimScheduler(config, 0.0);
            case EULER -> new EulerScheduler(config, false);
            case EULER_A -> new EulerScheduler(config, true);
            case DPMPP_2M -> new DpmSolverMultistepScheduler(config);
            case PNDM -> new PndmScheduler(config);
        };
    }

    public static Kind kind(String name) {
        for (Kind k : Kind.values()) {
            if (k.id.equals(name)) return k;
        }
        throw new IllegalArgumentException("unknown scheduler '" + name + "': choose one of " + String.join(", ", NAMES));
    }
}
