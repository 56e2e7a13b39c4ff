package dev.perfusion.world;

import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where the files shipped with the project are: the base model trained on this world ({@code models/world}, a
 * diffusers folder), its attribute classifier, the demo's example pictures and its second concept. The project
 * folder is the {@code perfusion.home} system property (the launcher sets it), else the nearest folder above the
 * working directory or the classes that holds {@code models/world}.
 */
public final class Bundled {
    private Bundled() {}

    public static Path home() {
        String home = System.getProperty("perfusion.home");
        if (home != null) return Path.of(home);
        Path found = search(Path.of("").toAbsolutePath());
        if (found == null) {
            try {
                found = search(Path.of(Bundled.class.getProtectionDomain().getCodeSource().getLocation().toURI()));
            } catch (URISyntaxException | SecurityException | NullPointerException e) {
                found = null;
            }
        }
        return found != null ? found : Path.of("").toAbsolutePath();
    }

    private static Path search(Path from) {
        for (Path p = from; p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("models/world/model_index.json"))) return p;
        }
        return null;
    }

    /** The bundled base model (diffusers folder). */
    public static Path model() {
        return home().resolve("models/world");
    }

    /** The judge of what world pictures show. */
    public static Path classifier() {
        return home().resolve("models/world-classifier.safetensors");
    }

    /** The judge of concept fidelity: which particular instance a picture shows. */
    public static Path instanceEncoder() {
        return home().resolve("models/world-instance-encoder.safetensors");
    }

    /** The judge of an object drawn twice: one object in a picture, or two side by side. */
    public static Path objectCounter() {
        return home().resolve("models/world-counter.safetensors");
    }

    /** The world's CLIP (text and image towers), the judge of the paper's CLIP-I and CLIP-T scores. */
    public static Path worldClip() {
        return home().resolve("models/world-clip");
    }

    /** Example pictures of a held-out instance, as a user would bring photos of their own thing. */
    public static Path examples(String name) {
        return home().resolve("models/examples").resolve(name);
    }

    /** A concept trained on the bundled model and shipped with it. */
    public static Path concept(String name) {
        return home().resolve("models/concepts").resolve(name + ".safetensors");
    }
}
