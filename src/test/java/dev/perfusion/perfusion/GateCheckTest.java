package dev.perfusion.perfusion;

import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.world.Bundled;
import dev.perfusion.world.BundledWorld;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The check after training: does a concept's gate open on an object named after its word? On the bundled model and my-cat. */
class GateCheckTest {
    static BundledWorld world;
    static ConceptFile cat;

    @BeforeAll
    static void load(@TempDir Path cache) throws IOException {
        world = BundledWorld.load(cache);
        cat = ConceptFile.load(Bundled.concept("my-cat"));
    }

    @Test
    void probesNameTwoOtherObjectsAfterTheWord() {
        assertEquals(List.of("a my-cat next to a car", "a my-cat next to a dog"), GateCheck.probes(world.sd().tokenizer, cat),
                "the supercategory itself is no other object");
    }

    @Test
    void reportsTheHighestPositionOffTheWordAcrossTheProbes() {
        GateCheck check = GateCheck.of(world.sd(), world.cInv(), cat).orElseThrow();
        double highest = Double.NEGATIVE_INFINITY;
        for (String prompt : GateCheck.probes(world.sd().tokenizer, cat)) {
            double[] elsewhere = GateProfile.of(world.sd(), world.cInv(), List.of(cat), prompt).elsewhere(0);
            highest = Math.max(highest, elsewhere[elsewhere.length - 1]);
        }
        assertEquals(highest, check.s(), 1e-9);
        assertTrue(check.atWord() > 0.8, "s at the word itself: " + check.atWord());
        assertEquals(check.g() >= GateCheck.OPEN, check.opens());
    }

    /** i* set to the encoding of "car" after the word: s there is 1 by construction, so the gate opens on the car. */
    @Test
    void aConceptWhoseIStarIsTheNextNounsEncodingOpensThere() {
        String prompt = "a my-cat next to a car";
        Tensor car;
        try (Scope s = Scope.inference();
             AppliedConcepts applied = AppliedConcepts.apply(world.sd(), world.cInv(), List.of(new AppliedConcepts.Use(cat, cat.beta(), cat.tau())),
                     ConceptGate.Orthogonalization.EXACT, false)) {
            int position = applied.tokenizer().positionNames(Ops.toLongs(world.sd().tokenize(applied.tokenizer(), List.of(prompt), w -> {})))
                    .indexOf("car");
            assertEquals(6, position, "BOS a my-cat next to a car");
            car = Scope.keep(applied.encode(List.of(prompt), w -> {}).select(0, 0).select(0, position).clone());
        }
        GateCheck check = GateCheck.of(world.sd(), world.cInv(), cat.withIStar(car)).orElseThrow();
        assertEquals("car", check.token());
        assertEquals(prompt, check.prompt());
        assertEquals(1.0, check.s(), 1e-4);
        assertEquals(1 / (1 + Math.exp(-(1.0 - cat.beta()) / cat.tau())), check.g(), 1e-3, "the sigmoid gate at s = 1");
        assertTrue(check.opens());
        assertTrue(check.summary().startsWith("gate check: the gate is 88% open at 'car' of \"a my-cat next to a car\" (s 1.000 at beta 0.70)"),
                check.summary());
        assertTrue(check.summary().contains("--embedding-lr"), check.summary());
    }

    @Test
    void aConceptWithoutPerfusionsGateHasNoCheck() {
        ConceptFile embeddingOnly = new ConceptFile(cat.word(), cat.supercategory(), cat.embedding(), cat.iStar(),
                ProjectionEdit.none(), cat.beta(), cat.tau(), cat.baseModelHash(),
                cat.textEncoderHash(), cat.settings());
        assertTrue(GateCheck.of(world.sd(), world.cInv(), embeddingOnly).isEmpty());
        ConceptFile ungated = new ConceptFile(cat.word(), cat.supercategory(), cat.embedding(), cat.iStar(),
                new ProjectionEdit(ProjectionEdit.Kind.RANK_ONE, cat.edit().keys(), cat.edit().values()), cat.beta(), cat.tau(),
                cat.baseModelHash(), cat.textEncoderHash(), cat.settings());
        assertTrue(GateCheck.of(world.sd(), world.cInv(), ungated).isEmpty(), "ROME's closed form has no beta to raise");
    }

    /** s at the word was NaN for a word outside ASCII: its position read back as byte symbols, never as the word. */
    @Test
    void findsTheWordOfAConceptNamedOutsideAsciiInAnyCase() {
        ConceptFile renamed = new ConceptFile("ÿ-Kat", cat.supercategory(), cat.embedding(), cat.iStar(), cat.edit(), cat.beta(), cat.tau(),
                cat.baseModelHash(), cat.textEncoderHash(), cat.settings());
        GateCheck check = GateCheck.of(world.sd(), world.cInv(), renamed).orElseThrow();
        assertTrue(check.atWord() > 0.8, "s at the word: " + check.atWord());
        double[] atWord = GateProfile.of(world.sd(), world.cInv(), List.of(renamed), "a ÿ-kat next to a car").atConceptWord(0);
        assertEquals(1, atWord.length, "the lower-cased word is the concept's");
        assertEquals(check.atWord(), Math.max(atWord[0], check.atWord()), 1e-9);
    }
}
