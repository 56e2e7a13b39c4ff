package dev.perfusion.world;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class InstanceTest {
    private final WorldGenerator world = new WorldGenerator();

    @Test
    void identitySurvivesScenesPosesAndSizes() {
        for (Instance inst : HeldOut.instances()) {
            List<Sample> views = world.views(inst, 5, inst.seed());
            Set<Scene> scenes = new HashSet<>();
            for (Sample s : views) {
                Labels l = s.labels();
                assertEquals(inst, l.instance());
                assertEquals(inst.id(), l.instanceId());
                assertEquals(inst.color(), l.color());
                assertEquals(inst.accessory(), l.instance().accessory());
                assertEquals(inst.accessoryColor(), l.instance().accessoryColor());
                assertTrue(s.caption().contains(CaptionGrammar.noun(inst)), s.caption());
                assertEquals(inst.color(), MaskTest.dominantColour(s.image(), s.mask(), inst.color()), inst.id());
                scenes.add(l.scene());
            }
            assertTrue(scenes.size() >= 2, "views should vary the scene");
        }
    }

    /** Its look-alikes differ from it in one detail each and draw differently only there: the same scene, another picture. */
    @Test
    void lookAlikesLackOneDetailEach() {
        Instance teddy = HeldOut.instances().get(0), cat = HeldOut.instances().get(1);
        assertEquals(List.of(Accessory.NONE), teddy.withoutEachDetail().stream().map(Instance::accessory).toList(), "the plain teddy: only its bow to lose");
        List<Instance> catLookAlikes = cat.withoutEachDetail();
        assertEquals(2, catLookAlikes.size());
        assertEquals(Accessory.NONE, catLookAlikes.get(0).accessory());
        assertEquals(cat.pattern(), catLookAlikes.get(0).pattern());
        assertEquals(Pattern.PLAIN, catLookAlikes.get(1).pattern());
        assertEquals(cat.accessory(), catLookAlikes.get(1).accessory());
        for (Instance other : catLookAlikes) {
            assertEquals(cat.id(), other.id());
            assertEquals(cat.rgb(), other.rgb());
            assertEquals(cat.height(), other.height());
        }
        SceneSpec spec = SceneSpec.single(teddy, Scene.BEACH, Placement.CENTER, Size.LARGE);
        java.awt.image.BufferedImage with = world.render(spec, 3).image();
        java.awt.image.BufferedImage without = world.render(SceneSpec.single(teddy.withoutEachDetail().get(0), Scene.BEACH, Placement.CENTER, Size.LARGE), 3).image();
        int differ = 0;
        for (int y = 0; y < with.getHeight(); y++) for (int x = 0; x < with.getWidth(); x++) if (with.getRGB(x, y) != without.getRGB(x, y)) differ++;
        assertTrue(differ > 5 && differ < with.getWidth() * with.getHeight() / 10, "only the bow's pixels differ: " + differ);
        assertTrue(Instance.random(Category.MUG, 4).withoutEachDetail().size() == 1, "a spotted mug without accessory: only its spots");
    }

    @Test
    void sameInstanceInTwoScenesDrawsTheSameColours() {
        Instance inst = HeldOut.instances().get(2);
        Sample beach = world.render(SceneSpec.single(inst, Scene.BEACH, Placement.CENTER, Size.LARGE), 1);
        Sample night = world.render(SceneSpec.single(inst, Scene.NIGHT, Placement.LEFT, Size.MEDIUM), 2);
        assertEquals(beach.labels().instance(), night.labels().instance());
        assertEquals(MaskTest.dominantColour(beach.image(), beach.mask(), inst.color()),
                MaskTest.dominantColour(night.image(), night.mask(), inst.color()));
    }

    @Test
    void categoriesHaveManyDistinctInstances() {
        for (Category c : Category.values()) {
            Set<String> looks = new HashSet<>();
            for (long s = 0; s < 200; s++) {
                Instance i = Instance.random(c, s);
                looks.add(i.color() + "/" + i.secondary() + "/" + i.pattern() + "/" + i.accessory() + "/"
                        + i.accessoryColor() + "/" + i.variant());
                assertTrue(c.colors().contains(i.color()) && c.accessories().contains(i.accessory()));
                assertTrue(!i.secondary().similar(i.color()), "pattern must contrast: " + i);
            }
            assertTrue(looks.size() > 150, c + " has only " + looks.size() + " looks");
        }
    }
}
