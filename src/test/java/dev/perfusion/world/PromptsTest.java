package dev.perfusion.world;

import org.junit.jupiter.api.Test;

import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;

class PromptsTest {
    @Test
    void aFilledEvaluationPromptIsFoundWhateverItsConceptPhrase() {
        for (Prompts.Prompt p : Prompts.evaluationPrompts()) {
            for (String phrase : new String[]{"teddy", "my-teddy", "orange-owl", "sks teddy"}) {
                assertEquals(Optional.of(p), Prompts.evaluationPromptOf(p.fill(phrase)), p.fill(phrase));
            }
        }
        assertEquals("an orange-owl on the beach", Prompts.fill("a {} on the beach", "orange-owl"), "the article follows the phrase");
        assertEquals(Optional.empty(), Prompts.evaluationPromptOf("a teddy on the moon"));
        assertEquals(Optional.empty(), Prompts.evaluationPromptOf(""));
    }

    @Test
    void eachPromptSaysItsKind() {
        assertEquals(Prompts.Kind.SINGLE, Prompts.evaluationPromptOf("a small dog in the snow on the left").orElseThrow().kind());
        assertEquals(Prompts.Kind.NEXT_TO, Prompts.evaluationPromptOf("a dog next to a red car on the grass").orElseThrow().kind());
        assertEquals(Prompts.Kind.SIDES, Prompts.evaluationPromptOf("a dog on the right and a yellow bird on the left in the city").orElseThrow().kind());
        long pairs = Prompts.evaluationPrompts().stream().filter(p -> p.kind() != Prompts.Kind.SINGLE).count();
        assertEquals(4, pairs);
    }
}
