package dev.perfusion.tensor;

import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Test aid: a {@link Scope} around each test, so a test's tensors are freed when it ends.
 * {@code @RegisterExtension final ScopePerTest scope = ScopePerTest.inference();}
 */
public final class ScopePerTest implements BeforeEachCallback, AfterEachCallback {
    private final boolean autograd;
    private Scope scope;

    private ScopePerTest(boolean autograd) {
        this.autograd = autograd;
    }

    /** Autograd off ({@link Scope#inference}). */
    public static ScopePerTest inference() { return new ScopePerTest(false); }

    /** Autograd on ({@link Scope#open}), for tests that call backward. */
    public static ScopePerTest training() { return new ScopePerTest(true); }

    @Override
    public void beforeEach(ExtensionContext context) {
        scope = autograd ? Scope.open() : Scope.inference();
    }

    @Override
    public void afterEach(ExtensionContext context) {
        scope.close();
    }
}
