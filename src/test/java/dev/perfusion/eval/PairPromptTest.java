package dev.perfusion.eval;

import dev.perfusion.world.Scene;
import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/** The two-concept prompts take turns over word order and side, so that the two can be told apart. */
class PairPromptTest {
    @Test
    void theFourFormsHoldEveryOrderAndSideOnce() {
        Set<String> combinations = new HashSet<>();
        for (int form = 0; form < 4; form++) {
            MethodEvaluation.PairPrompt p = MethodEvaluation.pairPrompt("my-cat", "my-dog", Scene.GRASS, form);
            combinations.add(p.aNamedFirst() + "/" + p.aOnLeft());
            String first = p.aNamedFirst() ? "my-cat" : "my-dog";
            assertTrue(p.text().startsWith("a " + first + " on the "), p.text());
            assertTrue(p.text().contains("a my-cat on the " + (p.aOnLeft() ? "left" : "right")), "the text puts a where it says: " + p.text());
            assertTrue(p.text().contains("a my-dog on the " + (p.aOnLeft() ? "right" : "left")), p.text());
            assertTrue(p.text().endsWith(" " + Scene.GRASS.phrase()), p.text());
        }
        assertEquals(Set.of("true/true", "false/true", "true/false", "false/false"), combinations);
        assertEquals("a my-cat on the left and a my-dog on the right " + Scene.GRASS.phrase(),
                MethodEvaluation.pairPrompt("my-cat", "my-dog", Scene.GRASS, 0).text(), "form 0 is the prompt the section always had");
        // prompt-following's pairs read the same way
        assertEquals("a red cat on the left and a blue dog on the right " + Scene.GRASS.phrase(), new PairPlacement.Pair(
                dev.perfusion.world.Category.CAT, dev.perfusion.world.Category.DOG, Scene.GRASS, dev.perfusion.world.ColorWord.RED,
                dev.perfusion.world.ColorWord.BLUE).prompt());
    }
}
