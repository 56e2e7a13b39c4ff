package dev.perfusion.eval;

import dev.perfusion.training.ConceptMethod;
import dev.perfusion.training.ConceptMethods;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** Earlier runs' scores read back and merged into one report, without a model. */
class MergedEvaluationTest {
    @TempDir Path tmp;

    private static MethodEvaluation.Score score(String method, String variant, double beta, String prompt, double fidelity, boolean identified) {
        // drawn twice where not identified, as a concept drawn twice often is not
        return new MethodEvaluation.Score(method, variant, beta, "teddy-h1", prompt, 0, fidelity, 0.5, Double.NaN, identified, 0.3, 0.6, identified ? 1 : 0,
                identified ? 0 : 1);
    }

    private Path run(String name, List<MethodEvaluation.Score> scores) throws IOException {
        Path dir = tmp.resolve(name);
        MethodEvaluation.Report r = MethodEvaluation.merge(List.of(scores));
        MethodEvaluation.writeMerged(r, List.of(), dir);
        return dir.resolve("scores.csv");
    }

    /**
     * --reuse-concepts takes a concept of an earlier run only where it is what this run would train: one made with mask
     * files lives apart from one made with none (their settings read alike), and one made for another text encoder is trained again.
     */
    @Test
    void aConceptIsReusedOnlyWhereThisRunWouldTrainTheSame() {
        MethodEvaluation.Protocol p = MethodEvaluation.Protocol.quick();
        ConceptMethod perfusion = ConceptMethods.PERFUSION;
        assertNotEquals(MethodEvaluation.conceptFile(tmp, "teddy-h1", perfusion, MethodEvaluation.Mask.NONE),
                MethodEvaluation.conceptFile(tmp, "teddy-h1", perfusion, MethodEvaluation.Mask.TRUTH));
        dev.perfusion.training.TrainingSettings settings = p.training(perfusion);
        org.bytedeco.pytorch.Tensor v = dev.perfusion.tensor.Ops.fromFloats(new float[] {0.1f, 0.2f}, 2);
        dev.perfusion.perfusion.ConceptFile earlier = new dev.perfusion.perfusion.ConceptFile("my-teddy", "teddy", v, v,
                dev.perfusion.perfusion.ProjectionEdit.none(), 0.7, 0.15, "unet0", "text0", settings.describe());
        assertTrue(MethodEvaluation.trainedAlike(earlier, "my-teddy", "unet0", "text0", 0, settings));
        assertFalse(MethodEvaluation.trainedAlike(earlier, "my-teddy", "unet0", "another text encoder", 0, settings));
        assertFalse(MethodEvaluation.trainedAlike(earlier, "my-teddy", "unet0", "text0", 1, settings));
    }

    /** Runs of one model and protocol merge (split by method, say) as they are; one made otherwise is named in the merged report. */
    @Test
    void runsOfAnotherModelOrProtocolAreNamedInTheMergedReport() throws IOException {
        MethodEvaluation.Report r = MethodEvaluation.merge(List.of(List.of(score("perfusion", "local lock", 0.7, "a my-teddy in the snow", 0.2, false))));
        MethodEvaluation.Protocol quick = MethodEvaluation.Protocol.quick();
        Path a = tmp.resolve("a"), b = tmp.resolve("b"), other = tmp.resolve("other"), longer = tmp.resolve("longer");
        MethodEvaluation.write(r, quick, a, "world");
        MethodEvaluation.write(r, quick, b, "world");
        MethodEvaluation.write(r, quick, other, "another model");
        MethodEvaluation.write(r, new MethodEvaluation.Protocol(1, 3, 1, 5, List.of(0.7), 3, 5.0, quick.methods(), true, quick.mask()), longer, "world");
        assertEquals(List.of(), MethodEvaluation.otherProtocols(List.of(a, b, tmp.resolve("no-report"))));
        List<String> unlike = MethodEvaluation.otherProtocols(List.of(a, other, longer));
        assertEquals(2, unlike.size(), "another model, and 5 training steps against 3: " + unlike);
        assertTrue(unlike.get(0).startsWith(other + " says it was made otherwise than " + a), unlike.get(0));
        String merged = MethodEvaluation.writeMerged(r, List.of(a, other), tmp.resolve("merged"));
        assertTrue(merged.contains("**Note**: " + other + " says it was made otherwise than " + a), merged);
    }

    /** A report written into a folder of an earlier run leaves none of that run's files beside it (its pairs.csv stayed). */
    @Test
    void anEarlierRunsPairsDoNotStayBesideANewReport() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("again"));
        Files.writeString(dir.resolve("pairs.csv"), "an earlier run's two-concept pictures\n");
        run("again", List.of(score("perfusion", "local lock", 0.7, "a my-teddy in the snow", 0.2, false)));
        assertFalse(Files.exists(dir.resolve("pairs.csv")));
        assertTrue(Files.isRegularFile(dir.resolve("report.md")) && Files.isRegularFile(dir.resolve("tradeoff.png")));
    }

    @Test
    void scoresReadBackAsWrittenAndEachRowComesFromTheFirstRunThatHasIt() throws IOException {
        String awkward = "a my-teddy, \"quoted\", on the grass";
        Path perfusion = run("perfusion", List.of(
                score("base model", "supercategory word", Double.NaN, "a teddy on the grass", 0.1, false),
                score("perfusion", "local lock", 0.7, awkward, 0.4, true),
                score("perfusion", "local lock", 0.7, "a my-teddy in the snow", 0.2, false)));
        Path baselines = run("baselines", List.of(
                score("base model", "supercategory word", Double.NaN, "a teddy on the grass", 0.9, true),
                score("world renderer, through the VAE", "the instance as asked", Double.NaN, "a teddy on the grass", 0.8, true),
                score("kv-finetune", "tuned K/V", Double.NaN, "a my-teddy in the snow", 0.5, true)));

        List<MethodEvaluation.Score> read = MethodEvaluation.readScores(perfusion);
        assertEquals(3, read.size());
        assertEquals(awkward, read.get(1).prompt(), "a prompt with commas and quotes survives");
        assertTrue(Double.isNaN(read.get(0).beta()) && Double.isNaN(read.get(0).leakage()));
        assertTrue(read.get(1).identified());
        assertEquals(0.7, read.get(1).beta());

        MethodEvaluation.Report merged = MethodEvaluation.merge(List.of(read, MethodEvaluation.readScores(baselines)));
        assertEquals(List.of("base model", "perfusion", "world renderer, through the VAE", "kv-finetune"),
                merged.summaries().stream().map(MethodEvaluation.Summary::method).toList(), "a name with a comma reads back whole");
        MethodEvaluation.Summary base = merged.summaries().get(0), perf = merged.summaries().get(1);
        assertEquals(0.1, base.fidelity(), 1e-9, "the base model's row is the first run's, not averaged with the second's");
        assertEquals(1, base.pictures());
        assertEquals(0.3, perf.fidelity(), 1e-9);
        assertEquals(0.5, perf.identification(), 1e-9);
        assertEquals(0.5, perf.details(), 1e-9);
        assertEquals(1.0, read.get(1).details());
        assertEquals(0.0, read.get(1).twice());
        assertEquals(1.0, read.get(2).twice());
        assertEquals(0.5, perf.drawnTwice(), 1e-9);
        assertTrue(merged.combinations().isEmpty());
    }

    /** Scores of runs before the details were scored read back with none, and a row's details average only the measured. */
    @Test
    void scoresWithoutDetailsReadBackWithNoneAndTheMeanSkipsThem() throws IOException {
        Path old = tmp.resolve("old.csv");
        Files.writeString(old, "method,variant,beta,instance,prompt,seed,fidelity,alignment,leakage,identified,clip_image,clip_text\n"
                + "perfusion,local lock,0.7,teddy-h1,a my-teddy in the snow,0,0.50000,1.00000,,1,0.30000,0.60000\n");
        List<MethodEvaluation.Score> read = MethodEvaluation.readScores(old);
        assertTrue(Double.isNaN(read.get(0).details()));
        MethodEvaluation.Summary s = MethodEvaluation.merge(List.of(read)).summaries().get(0);
        assertTrue(Double.isNaN(s.details()), "no details measured: none to report");
        String report = MethodEvaluation.markdown(MethodEvaluation.merge(List.of(read)), "");
        assertTrue(report.contains("| perfusion | local lock | 0.70 | 0.500 | 1.000 |  | 100% |  |  | 0.300 | 0.600 |"), report);
        assertTrue(Double.isNaN(read.get(0).twice()) && Double.isNaN(s.drawnTwice()), "not counted: none to report");
        List<MethodEvaluation.Score> mixed = List.of(read.get(0), score("perfusion", "local lock", 0.7, "a my-teddy at night", 0.4, true),
                score("perfusion", "local lock", 0.7, "a photo of a my-teddy", 0.4, false));
        assertEquals(0.5, MethodEvaluation.merge(List.of(mixed)).summaries().get(0).details(), 1e-12, "1 and 0 measured, one not");
    }

    /** Scores with details but before the pictures drawn twice were counted read back with none counted. */
    @Test
    void scoresWithoutTheCountReadBackWithNone() throws IOException {
        Path old = tmp.resolve("before-twice.csv");
        Files.writeString(old, "method,variant,beta,instance,prompt,seed,fidelity,alignment,leakage,identified,clip_image,clip_text,details\n"
                + "perfusion,local lock,0.7,teddy-h1,a my-teddy in the snow,0,0.50000,1.00000,,1,0.30000,0.60000,1\n");
        MethodEvaluation.Score read = MethodEvaluation.readScores(old).get(0);
        assertEquals(1.0, read.details());
        assertTrue(Double.isNaN(read.twice()));
        String report = MethodEvaluation.markdown(MethodEvaluation.merge(List.of(List.of(read))), "");
        assertTrue(report.contains("| perfusion | local lock | 0.70 | 0.500 | 1.000 |  | 100% | 100% |  | 0.300 | 0.600 |"), report);
    }

    @Test
    void theReportSplitsEachRowByKindOfPromptAndByInstance() {
        List<MethodEvaluation.Score> scores = List.of(
                score("perfusion", "local lock", 0.7, "a my-teddy in the snow", 0.6, true),
                score("perfusion", "local lock", 0.7, "a photo of a my-teddy", 0.4, false),
                new MethodEvaluation.Score("perfusion", "local lock", 0.7, "teddy-h1", "a my-teddy on the left and a blue mug on the right in a room",
                        0, 0.1, 0.5, 0.3, false, 0.3, 0.6, 0, Double.NaN),
                new MethodEvaluation.Score("perfusion", "local lock", 0.7, "teddy-h1", "a my-teddy next to a red car on the grass",
                        0, 0.5, 0.5, 0.2, true, 0.3, 0.6, Double.NaN, Double.NaN),
                score("perfusion", "local lock", 0.7, "not an evaluation prompt", 0.9, true));
        String table = MethodEvaluation.byPromptKind(scores);
        assertTrue(table.contains("| perfusion | local lock | 0.70 | 50% of 2 (0.500) | 0% of 1 (0.100 / 0.300) | 100% of 1 (0.500 / 0.200) |"), table);
        assertTrue(MethodEvaluation.markdown(MethodEvaluation.merge(List.of(scores)), "").contains(table), "the report holds the split");
        assertEquals("", MethodEvaluation.byPromptKind(List.of(score("perfusion", "local lock", 0.7, "a my-teddy", 0.4, true))),
                "no table without evaluation prompts");
        String byInstance = MethodEvaluation.byInstance(scores);
        assertTrue(byInstance.contains("| method | variant | beta | teddy-h1 |"), byInstance);
        assertTrue(byInstance.contains("| perfusion | local lock | 0.70 | 60% of 5 (0.500 / 0.250) |"), byInstance);
        assertTrue(byInstance.contains("By instance: details") && byInstance.contains("| perfusion | local lock | 0.70 | 50% of 4 |"),
                "details over the 4 pictures that have them: " + byInstance);
    }

    @Test
    void theReportCountsThePicturesDrawnTwiceByOneObjectPrompt() {
        List<MethodEvaluation.Score> scores = List.of(
                score("perfusion", "local lock", 0.7, "a my-teddy in the snow", 0.6, false),
                score("perfusion", "local lock", 0.7, "a my-teddy in the snow", 0.6, true),
                score("perfusion", "local lock", 0.7, "a photo of a my-teddy", 0.4, true),
                score("base model", "supercategory word", Double.NaN, "a teddy in the snow", 0.2, false),
                new MethodEvaluation.Score("perfusion", "local lock", 0.7, "teddy-h1", "a my-teddy in the forest", 0, 0.5, 0.5, Double.NaN, true,
                        0.3, 0.6, 1, Double.NaN),
                new MethodEvaluation.Score("perfusion", "local lock", 0.7, "teddy-h1", "a my-teddy next to a red car on the grass",
                        0, 0.5, 0.5, 0.2, false, 0.3, 0.6, Double.NaN, 1));
        String table = MethodEvaluation.twiceByPrompt(scores);
        assertTrue(table.startsWith("\nDrawn twice, by one-object prompt"), table);
        assertTrue(table.contains("| method | variant | beta | a photo of a {} | a {} on the beach | a {} in the snow |"), "a column per one-object prompt: " + table);
        assertFalse(table.contains("next to"), "no column for a pair prompt: " + table);
        assertTrue(table.contains("| perfusion | local lock | 0.70 | 0 of 1 | | 1 of 2 | |"), "the pair and the uncounted picture left out: " + table);
        assertTrue(table.contains("| base model | supercategory word |  | | | 1 of 1 | |"), table);
        assertTrue(MethodEvaluation.markdown(MethodEvaluation.merge(List.of(scores)), "").contains(table), "the report holds the table");
        assertEquals("", MethodEvaluation.twiceByPrompt(List.of(scores.get(4))), "no table where nothing was counted");
    }

    @Test
    void aFileThatIsNotScoresIsNamed() throws IOException {
        Path other = Files.writeString(tmp.resolve("scores.csv"), "name,value\n");
        IOException e = assertThrows(IOException.class, () -> MethodEvaluation.readScores(other));
        assertTrue(e.getMessage().startsWith(other + ": not the scores.csv of an evaluation"), e.getMessage());
        Path cut = run("cut", List.of(score("perfusion", "local lock", 0.7, "a my-teddy", 0.4, true)));
        Files.writeString(cut, Files.readString(cut).replace(",0.60000", ""));
        IOException short_ = assertThrows(IOException.class, () -> MethodEvaluation.readScores(cut));
        assertTrue(short_.getMessage().equals(cut + " line 2: 13 columns, expected 14 (method,variant,beta,instance,prompt,seed,fidelity,alignment,"
                + "leakage,identified,clip_image,clip_text,details,twice)"), short_.getMessage());
    }

    @Test
    void theReportSaysWhichStepsDrewTheConcepts() {
        MethodEvaluation.Protocol full = MethodEvaluation.Protocol.full();
        assertEquals(0.2, full.conceptStart(), "drawn as generate draws by default");
        assertEquals("the first 5 steps drawn by the base model with the supercategory word, the concepts from then on (concept start 0.2)",
                MethodEvaluation.conceptStartText(full));
        MethodEvaluation.Protocol paper = new MethodEvaluation.Protocol(6, 16, 2, 400, List.of(0.7), 25, 5.0, 0, 0, full.methods(), true,
                MethodEvaluation.Mask.ATTENTION, MethodEvaluation.Training.paper());
        assertEquals("the concepts in every step (the paper's)", MethodEvaluation.conceptStartText(paper));
        assertThrows(IllegalArgumentException.class, () -> new MethodEvaluation.Protocol(6, 16, 2, 400, List.of(0.7), 25, 5.0, 1, 0,
                full.methods(), true, MethodEvaluation.Mask.ATTENTION, MethodEvaluation.Training.paper()));
        // and how the objects were steered to their sides
        assertEquals(8.0, full.sideSteering(), "steered as generate steers by default");
        assertEquals("; each object steered to its prompted side in the first 10 steps (side steering 8.0)", MethodEvaluation.sideSteeringText(full));
        assertEquals("; objects not steered to their sides", MethodEvaluation.sideSteeringText(paper));
        assertThrows(IllegalArgumentException.class, () -> new MethodEvaluation.Protocol(6, 16, 2, 400, List.of(0.7), 25, 5.0, 0, -1,
                full.methods(), true, MethodEvaluation.Mask.ATTENTION, MethodEvaluation.Training.paper()));
    }

    @Test
    void theProtocolTrainsThroughTheGateItIsGivenAndItsReportSaysSo() {
        MethodEvaluation.Protocol paper = MethodEvaluation.Protocol.full();
        MethodEvaluation.Protocol lower = new MethodEvaluation.Protocol(6, 16, 2, 400, List.of(0.7), 25, 5.0, 0.2, 3, List.of(dev.perfusion.training.ConceptMethods.PERFUSION),
                true, MethodEvaluation.Mask.ATTENTION, new MethodEvaluation.Training(0.006, false, 0.65, 0.1));
        assertEquals(0.75, paper.training(dev.perfusion.training.ConceptMethods.PERFUSION).trainBeta(), "the paper's by default");
        assertEquals(0.65, lower.training(dev.perfusion.training.ConceptMethods.PERFUSION).trainBeta());
        assertEquals("; embedding learning rate 0.006", paper.conceptTraining().describe(), "the paper's gate goes unsaid");
        assertEquals("; embedding learning rate 0.006; training gate beta 0.65, tau 0.1", lower.conceptTraining().describe());
        assertNotEquals(paper.training(dev.perfusion.training.ConceptMethods.PERFUSION).describe(),
                lower.training(dev.perfusion.training.ConceptMethods.PERFUSION).describe(), "a concept trained otherwise is not reused");
        assertThrows(IllegalArgumentException.class, () -> new MethodEvaluation.Protocol(1, 1, 1, 1, List.of(0.7), 2, 5.0, 0.2, 3,
                List.of(dev.perfusion.training.ConceptMethods.PERFUSION), false, MethodEvaluation.Mask.NONE, new MethodEvaluation.Training(0.006, false, 3, 0.1)));
    }
}
