package dev.perfusion;

import dev.perfusion.tensor.Libtorch;
import org.junit.platform.launcher.LauncherSession;
import org.junit.platform.launcher.LauncherSessionListener;

/**
 * Loads the bundled libtorch before any test runs, whichever test touches libtorch first (registered in
 * META-INF/services): a libtorch installed on the machine must never be loaded beside it.
 */
public final class BundledLibtorchSession implements LauncherSessionListener {
    @Override
    public void launcherSessionOpened(LauncherSession session) {
        Libtorch.ensureLoaded();
    }
}
