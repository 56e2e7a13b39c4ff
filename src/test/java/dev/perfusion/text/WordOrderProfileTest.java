package dev.perfusion.text;

import dev.perfusion.tensor.Ops;
import dev.perfusion.world.Bundled;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class WordOrderProfileTest {
    @Test
    void comparesEachOrderedPairWithItsSwappedPrompt() throws Exception {
        ClipTokenizer tokenizer = ClipTokenizer.load(Bundled.model().resolve("tokenizer"));
        ClipTextModel text = ClipTextModel.load(Bundled.model().resolve("text_encoder"), Ops.cpu(), torch.ScalarType.Float);
        WordOrderProfile p = WordOrderProfile.measure(tokenizer, text, List.of("dog", "car", "cat"));
        assertEquals(6, p.pairs(), "every ordered pair");
        for (double c : new double[] {p.left(), p.right(), p.eos(), p.firstVsSecond(), p.twoObjects()}) assertTrue(c >= -1.0001 && c <= 1.0001, p.toString());
        // one word against itself at another place is closer than two different words at one place
        assertTrue(p.firstVsSecond() > p.twoObjects(), p.toString());
        assertTrue(p.summary().startsWith("word order (\"a A on the left and a B on the right on the grass\" against A and B swapped, 6 ordered pairs"), p.summary());
        // the prompts read the same words in the same places: one pair swapped is the same comparison seen from the other side
        WordOrderProfile one = WordOrderProfile.measure(tokenizer, text, List.of("dog", "car"));
        assertEquals(2, one.pairs());
        assertEquals(one.left(), WordOrderProfile.measure(tokenizer, text, List.of("car", "dog")).left(), 1e-6);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> WordOrderProfile.measure(tokenizer, text, List.of("dog", "dogcar")));
        assertEquals("'dog' and 'dogcar' must each be one token of the tokenizer", e.getMessage());
    }

    @Test
    void comparesEachColourPairWithItsColoursSwapped() throws Exception {
        ClipTokenizer tokenizer = ClipTokenizer.load(Bundled.model().resolve("tokenizer"));
        ClipTextModel text = ClipTextModel.load(Bundled.model().resolve("text_encoder"), Ops.cpu(), torch.ScalarType.Float);
        WordOrderProfile.ColourBinding b = WordOrderProfile.measureColours(tokenizer, text, List.of("red", "blue", "green"),
                List.of(List.of("dog", "car"), List.of("cat", "mug")));
        assertEquals(12, b.pairs(), "every ordered pair of colours, for each pair of objects");
        for (double c : new double[] {b.nounAfterEitherColour(), b.colourFirstVsSecond(), b.eos(), b.twoColours()}) assertTrue(c >= -1.0001 && c <= 1.0001, b.toString());
        // one colour word on either object is closer than two colour words on one object
        assertTrue(b.colourFirstVsSecond() > b.twoColours(), b.toString());
        assertTrue(b.summary().startsWith("colour binding (\"a C A on the left and a D B on the right on the grass\" against C and D swapped, 12 prompt pairs"), b.summary());
        // a swap seen from either side is one comparison: red/blue measures what blue/red does
        WordOrderProfile.ColourBinding one = WordOrderProfile.measureColours(tokenizer, text, List.of("red", "blue"), List.of(List.of("dog", "car")));
        assertEquals(one.eos(), WordOrderProfile.measureColours(tokenizer, text, List.of("blue", "red"), List.of(List.of("dog", "car"))).eos(), 1e-6);
        assertThrows(IllegalArgumentException.class, () -> WordOrderProfile.measureColours(tokenizer, text, List.of("red", "redblue"), List.of(List.of("dog", "car"))));
    }
}
