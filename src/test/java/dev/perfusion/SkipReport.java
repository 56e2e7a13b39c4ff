package dev.perfusion;

import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.TestPlan;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Prints, at the end of a test run, every skipped test grouped by its reason, on the console where people look
 * (Maven's summary shows only a count; the reasons otherwise sit in the XML reports).
 */
public final class SkipReport implements TestExecutionListener {
    private final Map<String, List<String>> byReason = new LinkedHashMap<>();
    private TestPlan plan;

    @Override
    public void testPlanExecutionStarted(TestPlan testPlan) {
        plan = testPlan;
    }

    @Override
    public void executionSkipped(TestIdentifier test, String reason) {
        record(test, reason);
    }

    @Override
    public void executionFinished(TestIdentifier test, TestExecutionResult result) {
        if (result.getStatus() == TestExecutionResult.Status.ABORTED) {
            record(test, result.getThrowable().map(Throwable::getMessage).orElse("aborted"));
        }
    }

    private synchronized void record(TestIdentifier test, String reason) {
        String name = test.getDisplayName();
        if (plan != null) {
            name = plan.getParent(test).map(p -> p.getDisplayName() + ".").orElse("") + name;
        }
        byReason.computeIfAbsent(reason == null ? "no reason given" : reason, r -> new ArrayList<>()).add(name);
    }

    @Override
    public synchronized void testPlanExecutionFinished(TestPlan testPlan) {
        if (byReason.isEmpty()) return;
        StringBuilder out = new StringBuilder("\nSkipped tests, by reason:\n");
        byReason.forEach((reason, tests) -> out.append("  ").append(tests.size()).append(tests.size() == 1 ? " test" : " tests")
                .append(" — ").append(reason).append("\n    ").append(String.join(", ", tests)).append('\n'));
        System.out.print(out);
        System.out.flush();
    }
}
