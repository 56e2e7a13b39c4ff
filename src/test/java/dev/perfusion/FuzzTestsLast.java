package dev.perfusion;

import org.junit.jupiter.api.ClassOrderer;
import org.junit.jupiter.api.ClassOrdererContext;

import java.util.Comparator;

/**
 * Runs the fuzz tests after every other test class (set in junit-platform.properties): the Jazzer agent they
 * install instruments each class loaded after it, and reports each on stderr, which other tests capture.
 */
public final class FuzzTestsLast implements ClassOrderer {
    @Override
    public void orderClasses(ClassOrdererContext context) {
        context.getClassDescriptors().sort(Comparator.comparing(d -> d.getTestClass().getPackageName().equals("dev.perfusion.fuzz")));
    }
}
