package dev.perfusion.world;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

class HeldOutTest {
    @Test
    void heldOutInstancesAreManyDistinctAndReserved() {
        List<Instance> held = HeldOut.instances();
        assertTrue(held.size() >= 8);
        assertTrue(held.stream().map(Instance::category).collect(Collectors.toSet()).size() >= 6);
        assertEquals(held.size(), held.stream().map(Instance::id).distinct().count());
        for (Instance h : held) {
            assertFalse(HeldOut.isTrainingSeed(h.seed()), h.id());
            assertTrue(HeldOut.resembles(h) && HeldOut.isHeldOut(h));
            assertTrue(h.category().colors().contains(h.color()));
        }
    }

    @Test
    void trainingStreamNeverShowsAHeldOutInstance() {
        WorldGenerator w = new WorldGenerator();
        Set<String> heldIds = new HashSet<>();
        HeldOut.instances().forEach(h -> heldIds.add(h.id()));
        for (long seed = 0; seed < 2000; seed++) {
            Labels labels = w.sample(seed).labels();
            List<Instance> shown = new java.util.ArrayList<>(List.of(labels.instance()));
            labels.second().ifPresent(p -> shown.add(p.instance()));
            for (Instance inst : shown) {
                assertTrue(HeldOut.isTrainingSeed(inst.seed()), inst.id());
                assertFalse(HeldOut.resembles(inst), "look-alike of a held-out instance: " + inst);
                assertFalse(heldIds.contains(inst.id()), inst.id());
            }
        }
    }

    @Test
    void lookAlikesAreRedrawn() {
        // Without the filter, a look-alike of the brown teddy with a blue bow turns up among random teddies.
        Instance target = HeldOut.instances().get(0);
        long lookAlikes = java.util.stream.LongStream.range(0, 20000)
                .mapToObj(s -> Instance.random(target.category(), s)).filter(HeldOut::resembles).count();
        assertTrue(lookAlikes > 0, "the filter is tested against real look-alikes");
        SplittableRandom rng = new SplittableRandom(1);
        for (int i = 0; i < 20000; i++) {
            assertFalse(HeldOut.resembles(WorldGenerator.trainingInstance(target.category(), rng)));
        }
    }
}
