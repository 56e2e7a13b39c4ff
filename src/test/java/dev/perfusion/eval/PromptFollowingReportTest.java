package dev.perfusion.eval;

import dev.perfusion.eval.AttributeClassifier.Attribute;
import dev.perfusion.world.Category;
import org.junit.jupiter.api.Test;

import java.util.EnumMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The prompt-following report says what it did not measure instead of printing 0% for it. */
class PromptFollowingReportTest {
    @Test
    void aRateNoPromptAskedForIsNotPrintedAsNoneRight() {
        Map<Attribute, Double> generated = new EnumMap<>(Attribute.class), rendered = new EnumMap<>(Attribute.class);
        for (Attribute a : Attribute.values()) {
            generated.put(a, 0.5);
            rendered.put(a, 1.0);
        }
        generated.put(Attribute.SIZE, Double.NaN); // every scene of the run was of medium size, which prompts do not name
        rendered.put(Attribute.SIZE, Double.NaN);
        int n = Category.values().length;
        int[][] confusion = new int[n][n];
        confusion[0][0] = 3; // only the first category was asked
        String md = new PromptFollowing.Report(3, generated, rendered, 0.5, confusion, Map.of(), 0, 0, List.of(), List.of()).markdown();
        assertTrue(md.contains("| size | not asked | not asked |"), md);
        assertTrue(md.contains("| category | 50.0% | 100.0% |"), md);
        assertTrue(md.contains("| " + Category.values()[1].word() + " |" + " 0 |".repeat(n) + " not asked |"), md);
        assertTrue(md.contains("| " + Category.values()[0].word() + " | 3 |"), md);
    }
}
