package dev.perfusion.pipeline;

import dev.perfusion.io.layout.ModelSource;
import dev.perfusion.perfusion.AppliedConcepts;
import dev.perfusion.perfusion.ConceptFile;
import dev.perfusion.perfusion.ConceptGate;
import dev.perfusion.perfusion.CovarianceCache;
import dev.perfusion.tensor.Ops;
import dev.perfusion.util.Progress;
import dev.perfusion.world.Bundled;
import dev.perfusion.world.WorldCorpus;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/** Tests that draw with the bundled model, its shipped my-cat concept and a C^-1 of 300 world captions, loaded once per class. */
abstract class BundledCatTest {
    @TempDir static Path tmp;
    static StableDiffusion sd;
    static Tensor cInv;
    static ConceptFile cat;

    @BeforeAll
    static void loadBundledCat() throws IOException {
        sd = StableDiffusion.load(Bundled.model(), ModelSource.Options.defaults(), Ops.cpu(), torch.ScalarType.Float, Progress.NONE);
        cInv = CovarianceCache.inverseFor(sd, WorldCorpus.world(), tmp.resolve("cache"), 300, Progress.NONE);
        cat = ConceptFile.load(Bundled.concept("my-cat"));
    }

    /** my-cat installed with its own gate, exact combination, local lock. */
    static AppliedConcepts applyCat() {
        return AppliedConcepts.apply(sd, cInv, List.of(new AppliedConcepts.Use(cat, cat.beta(), cat.tau())),
                ConceptGate.Orthogonalization.EXACT, false);
    }
}
