package dev.perfusion.pipeline;

import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** Which words a prompt's sides steer, and the logits they add on each half of each level of the UNet. */
class SideSteeringTest {
    private static final int L = -1, R = 1;

    private static int[] sides(String prompt) {
        List<String> names = new java.util.ArrayList<>();
        names.add("<|startoftext|>");
        names.addAll(Arrays.asList(prompt.split(" ")));
        names.add("<|endoftext|>");
        names.add("!");
        return SideSteering.sidesOf(names);
    }

    @Test
    void eachObjectOfAPairIsSteeredToItsOwnSide() {
        // <s> a cat on the left and a dog on the right in a room </s> pad
        assertArrayEquals(new int[] {0, 0, L, 0, 0, 0, 0, 0, R, 0, 0, 0, 0, 0, 0, 0, 0}, sides("a cat on the left and a dog on the right in a room"));
        // the right-hand object named first
        assertArrayEquals(new int[] {0, 0, R, 0, 0, 0, 0, 0, L, 0, 0, 0, 0, 0}, sides("a my-teddy on the right and a bird on the left"));
    }

    @Test
    void anObjectToOneSideOfAnotherSendsTheOtherToTheOtherSide() {
        // <s> a my-teddy to the left of a black cat on the grass </s> pad
        assertArrayEquals(new int[] {0, 0, L, 0, 0, 0, 0, 0, R, R, 0, 0, 0, 0, 0}, sides("a my-teddy to the left of a black cat on the grass"));
        assertArrayEquals(new int[] {0, 0, R, 0, 0, 0, 0, 0, L, 0, 0}, sides("a dog on the right of a car"));
        // "to the left" without an object after it; "of the picture" names no object
        assertArrayEquals(new int[] {0, 0, L, 0, 0, 0, 0, 0, R, 0, 0, 0, 0, 0}, sides("a cat to the left and a dog to the right"));
        assertArrayEquals(new int[] {0, 0, L, 0, 0, 0, 0, 0, 0, 0, 0}, sides("a cat on the left of the picture"));
    }

    @Test
    void anOpeningTheNamesAnObjectAndThePictureIsNoObject() {
        // <s> the cat on the left and the dog on the right </s> pad
        assertArrayEquals(new int[] {0, 0, L, 0, 0, 0, 0, 0, R, 0, 0, 0, 0, 0}, sides("the cat on the left and the dog on the right"));
        assertArrayEquals(new int[] {0, 0, L, 0, 0, 0, 0, 0, R, 0, 0}, sides("a cat to the left of the dog"));
        // "the" inside a phrase still opens no object: the scene stays unsteered
        assertArrayEquals(new int[] {0, 0, L, 0, 0, 0, 0, 0, 0, 0, 0}, sides("a cat in the snow on the left"));
        assertArrayEquals(new int[] {0, 0, L, 0, 0, 0, 0, 0, 0, 0, 0}, sides("a cat on the left of the picture"));
    }

    @Test
    void aPhraseRunsOverHyphensAndStopsAtCommas() {
        // the pieces of "blue-eyed", as a BPE tokenizer splits it, belong to the phrase; a comma ends it
        assertArrayEquals(new int[] {0, 0, L, L, L, L, 0, 0, 0, 0, 0}, sides("a blue - eyed cat on the left"));
        assertArrayEquals(new int[] {0, 0, L, 0, 0, 0, 0, 0, R, 0, 0, 0, 0}, sides("a dog to the left of a cat , photo"));
    }

    @Test
    void theNounPhraseBeforeTheSceneIsSteeredNotTheScene() {
        // <s> a photo of a small blue mug in the snow on the left </s> pad
        assertArrayEquals(new int[] {0, 0, 0, 0, 0, L, L, L, 0, 0, 0, 0, 0, 0, 0, 0}, sides("a photo of a small blue mug in the snow on the left"));
        // a red car on the left on the beach: the beach stays unsteered
        assertArrayEquals(new int[] {0, 0, L, L, 0, 0, 0, 0, 0, 0, 0, 0}, sides("a red car on the left on the beach"));
    }

    @Test
    void promptsWithoutASideAreNotSteered() {
        assertTrue(Arrays.stream(sides("a cat next to a dog on the beach")).allMatch(s -> s == 0));
        assertTrue(Arrays.stream(sides("a dog on the grass and a cat")).allMatch(s -> s == 0));
        assertTrue(Arrays.stream(sides("")).allMatch(s -> s == 0));
    }

    @Test
    void logitsRaiseAWordOnItsHalfAndLowerItOnTheOther() {
        // two rows (an unsteered negative prompt, then a prompt whose position 2 is left and 5 right), 4x4 latents, 6 keys
        SideSteering steering = new SideSteering(new int[][] {{0, 0, 0, 0, 0, 0}, {0, 0, L, 0, 0, R}}, 4, 4, 2.5);
        try (Scope s = Scope.inference()) {
            for (long side : new long[] {4, 2, 1}) { // the UNet's levels: 4x4, 2x2, 1x1
                long queries = side * side;
                float[] v = Ops.toFloats(steering.logits(2, queries, 6));
                assertEquals(2 * queries * 6, v.length);
                for (int q = 0; q < queries; q++) {
                    long x = q % side;
                    float half = side == 1 ? 0 : x < side / 2 ? 1 : -1; // left pixels: +1 for a left word
                    for (int k = 0; k < 6; k++) {
                        assertEquals(0f, v[(int) (q * 6 + k)], "the negative prompt's row, query " + q + ", key " + k);
                        float expected = k == 2 ? 2.5f * half : k == 5 ? -2.5f * half : 0f;
                        assertEquals(expected, v[(int) ((queries + q) * 6 + k)], 0f, side + "x" + side + ", query " + q + ", key " + k);
                    }
                }
            }
            assertThrows(IllegalStateException.class, () -> steering.logits(3, 16, 6), "a batch of another size");
            assertThrows(IllegalStateException.class, () -> steering.logits(2, 15, 6), "no level has 15 pixels");
        } finally {
            steering.release();
        }
    }

    @Test
    void oddLatentSizesAreHalvedAsTheUNetsDownsamplersRoundThem() {
        // 5x9 latents (a 72x40 picture of Stable Diffusion): the UNet's levels are 5x9, 3x5, 2x3 and 1x2; 2x4 and 1x2
        // where its downsamplers have padding 0 and round down
        SideSteering steering = new SideSteering(new int[][] {{0, L, R}}, 5, 9, 1);
        try (Scope s = Scope.inference()) {
            for (long[] level : new long[][] {{5, 9}, {3, 5}, {2, 3}, {1, 2}, {2, 4}}) {
                long h = level[0], w = level[1], queries = h * w;
                float[] v = Ops.toFloats(steering.logits(1, queries, 3));
                for (int q = 0; q < queries; q++) {
                    long x = q % w;
                    float half = 2 * x + 1 < w ? 1 : 2 * x + 1 > w ? -1 : 0; // the middle column of an odd width: neither
                    assertEquals(half, v[q * 3 + 1], 0f, h + "x" + w + ", query " + q + ", the left word");
                    assertEquals(-half, v[q * 3 + 2], 0f, h + "x" + w + ", query " + q + ", the right word");
                }
            }
        } finally {
            steering.release();
        }
    }
}
