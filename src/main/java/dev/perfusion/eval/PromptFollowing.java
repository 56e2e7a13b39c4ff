package dev.perfusion.eval;

import dev.perfusion.eval.AttributeClassifier.Attribute;
import dev.perfusion.io.AtomicFiles;
import dev.perfusion.io.ImageGrid;
import dev.perfusion.io.Png;
import dev.perfusion.pipeline.StableDiffusion;
import dev.perfusion.pipeline.TextToImage;
import dev.perfusion.tensor.Scope;
import dev.perfusion.util.Progress;
import dev.perfusion.world.Category;
import dev.perfusion.world.Labels;
import dev.perfusion.world.Sample;
import dev.perfusion.world.Size;
import dev.perfusion.world.WorldGenerator;

import org.bytedeco.pytorch.Tensor;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * How often a model's samples show what their prompts say. Prompts are full world captions of random single-object
 * scenes (colour, category, scene, placement, and size when not medium); the attribute classifier reads each
 * sample, and the object counter whether it shows the object twice. The same judges on the rendered pictures of the
 * same scenes give their own ceiling.
 */
public final class PromptFollowing {
    private PromptFollowing() {}

    /**
     * Rates per attribute (size over the prompts that name one) for generated samples and for the renders of the
     * same scenes; which category the judge saw for each one asked ({@code categoryConfusion[asked][seen]}) and
     * the category rate per object size, to tell which shapes the model has not learned; the first samples for
     * viewing.
     */
    public record Report(int samples, Map<Attribute, Double> generated, Map<Attribute, Double> rendered,
                         double allOfCategorySceneGenerated, int[][] categoryConfusion, Map<Size, Double> categoryBySize,
                         double drawnTwice, double renderedTwice, List<String> prompts, List<BufferedImage> images) {
        public String markdown() {
            StringBuilder sb = new StringBuilder("| attribute | samples showing it | judge on rendered pictures |\n|---|---|---|\n");
            for (Attribute a : Attribute.values()) {
                sb.append(String.format(Locale.ROOT, "| %s | %s | %s |%n", a.label(), percent(generated.get(a)), percent(rendered.get(a))));
            }
            sb.append(String.format(Locale.ROOT, "| category and scene both | %.1f%% | |%n", 100 * allOfCategorySceneGenerated));
            sb.append(String.format(Locale.ROOT, "%nOne object drawn twice (the object counter reads two where the prompt names one): %.1f%%; "
                    + "the counter on the rendered pictures: %.1f%%.%n", 100 * drawnTwice, 100 * renderedTwice));
            sb.append("\nCategory by object size: ");
            categoryBySize.forEach((size, rate) -> sb.append(String.format(Locale.ROOT, "%s %.1f%%; ",
                    size.word().orElse("medium"), 100 * rate)));
            sb.setLength(sb.length() - 2);
            sb.append(".\n\nWhat the judge saw (rows: the category asked; columns: the category seen):\n\n| asked |");
            for (Category c : Category.values()) sb.append(' ').append(c.word()).append(" |");
            sb.append(" right |\n|---|").append("---|".repeat(Category.values().length + 1)).append('\n');
            for (Category asked : Category.values()) {
                int[] row = categoryConfusion[asked.ordinal()];
                sb.append("| ").append(asked.word()).append(" |");
                for (int n : row) sb.append(' ').append(n).append(" |");
                int total = Arrays.stream(row).sum();
                sb.append(total == 0 ? " not asked |\n" : String.format(Locale.ROOT, " %.0f%% |%n", 100.0 * row[asked.ordinal()] / total));
            }
            return sb.toString();
        }
    }

    /** A rate as a percentage; "not asked" where no prompt asked for it (NaN). */
    static String percent(double rate) {
        return Double.isNaN(rate) ? "not asked" : String.format(Locale.ROOT, "%.1f%%", 100 * rate);
    }

    public static Report measure(StableDiffusion sd, AttributeClassifier judge, ObjectCounter counter, int count, int steps,
                                 double guidance, double sideSteering, long seed, Progress progress) {
        WorldGenerator world = new WorldGenerator();
        SplittableRandom rng = new SplittableRandom(seed);
        List<Sample> scenes = new ArrayList<>();
        for (int i = 0; i < count; i++) scenes.add(world.render(AttributeClassifier.randomSingle(rng), rng.nextLong()));
        List<BufferedImage> generated = sample(sd, scenes.stream().map(Sample::caption).toList(), steps, guidance, sideSteering, seed, "sampling prompts", progress);
        Map<Attribute, Double> genRates = new EnumMap<>(Attribute.class), renderRates = new EnumMap<>(Attribute.class);
        Map<Attribute, long[]> onGenerated = new EnumMap<>(Attribute.class), onRendered = new EnumMap<>(Attribute.class);
        int generatedTwice = 0, renderedTwice = 0;
        for (int from = 0; from < count; from += 64) {
            int to = Math.min(count, from + 64);
            try (Scope s = Scope.inference()) {
                Tensor samples = AttributeClassifier.picturesOf(generated.subList(from, to)), renders = AttributeClassifier.pictures(scenes.subList(from, to));
                merge(onGenerated, judge.predict(samples));
                merge(onRendered, judge.predict(renders));
                generatedTwice += ObjectCounter.count(counter.twoObjects(samples));
                renderedTwice += ObjectCounter.count(counter.twoObjects(renders));
            }
        }
        for (Attribute a : Attribute.values()) {
            int asked = 0, shown = 0, renderedRight = 0;
            for (int i = 0; i < count; i++) {
                if (a == Attribute.SIZE && scenes.get(i).labels().size() == Size.MEDIUM) continue; // unnamed in prompts
                int truth = a.of(scenes.get(i).labels());
                asked++;
                if (onGenerated.get(a)[i] == truth) shown++;
                if (onRendered.get(a)[i] == truth) renderedRight++;
            }
            // NaN where none was asked (only medium sizes drawn): no rate, not 0%
            genRates.put(a, asked == 0 ? Double.NaN : shown / (double) asked);
            renderRates.put(a, asked == 0 ? Double.NaN : renderedRight / (double) asked);
        }
        int categories = Category.values().length;
        int[][] confusion = new int[categories][categories];
        int[] askedOfSize = new int[Size.values().length], rightOfSize = new int[Size.values().length];
        int categoryAndScene = 0;
        for (int i = 0; i < count; i++) {
            Labels labels = scenes.get(i).labels();
            int asked = Attribute.CATEGORY.of(labels), seen = (int) onGenerated.get(Attribute.CATEGORY)[i];
            confusion[asked][seen]++;
            askedOfSize[labels.size().ordinal()]++;
            if (asked == seen) {
                rightOfSize[labels.size().ordinal()]++;
                if (onGenerated.get(Attribute.SCENE)[i] == Attribute.SCENE.of(labels)) categoryAndScene++;
            }
        }
        Map<Size, Double> bySize = new EnumMap<>(Size.class);
        for (Size size : Size.values()) {
            if (askedOfSize[size.ordinal()] > 0) bySize.put(size, rightOfSize[size.ordinal()] / (double) askedOfSize[size.ordinal()]);
        }
        int shown = Math.min(count, 24);
        return new Report(count, genRates, renderRates, categoryAndScene / (double) count, confusion, bySize,
                generatedTwice / (double) count, renderedTwice / (double) count, scenes.subList(0, shown).stream().map(Sample::caption).toList(), generated.subList(0, shown));
    }

    /**
     * The model's pictures of {@code prompts} at its picture size (DDIM, no negative prompt), in batches of 8, batch k
     * from the noise of seed {@code seed * 1000 + 8k}, each object steered to its prompted side at {@code sideSteering}.
     */
    static List<BufferedImage> sample(StableDiffusion sd, List<String> prompts, int steps, double guidance, double sideSteering,
                                      long seed, String task, Progress progress) {
        List<BufferedImage> out = new ArrayList<>();
        int batch = 8, count = prompts.size();
        for (int from = 0; from < count; from += batch) {
            TextToImage.Request r = new TextToImage.Request(prompts.subList(from, Math.min(count, from + batch)), "", guidance, steps, "ddim", sd.pictureSize(), sd.pictureSize(), sideSteering);
            out.addAll(TextToImage.generate(sd, r, seed * 1000 + from, Progress.NONE).images());
            progress.update(task, Math.min(count, from + batch), count, "");
        }
        return out;
    }

    /**
     * Writes the report of a {@link #measure} run with these settings into {@code dir}: report.md (the settings and
     * {@link Report#markdown}) and samples.png (the first samples, four a row, each row labelled with its prompts).
     */
    /**
     * The report (with {@code appendix}: the pair section, or a line saying it is not measured yet, or empty) and the
     * samples' grid; the report last, so that a folder with a new report holds its run's grid.
     */
    public static void write(Report r, Path dir, String modelName, String judge, int steps, double guidance, double sideSteering, long seed,
                             String appendix) throws IOException {
        Files.createDirectories(dir);
        String md = String.format(Locale.ROOT, "# Prompt following of %s%n%n%d samples, DDIM %d steps, guidance %.1f, side steering %s, seed %d; "
                        + "judged by %s.%n%n%s%s", modelName, r.samples(), steps, guidance, sideSteering, seed, judge, r.markdown(), appendix);
        List<List<BufferedImage>> rows = new ArrayList<>();
        List<String> labels = new ArrayList<>();
        for (int i = 0; i < r.images().size(); i += 4) {
            rows.add(r.images().subList(i, Math.min(i + 4, r.images().size())));
            labels.add(String.join("\n", r.prompts().subList(i, Math.min(i + 4, r.prompts().size()))));
        }
        // one prompt a line, in the order of the row's pictures
        Png.write(dir.resolve("samples.png"), ImageGrid.of(rows, labels, List.of(), 128, 330), Map.of("prompts", String.join("\n", r.prompts())));
        AtomicFiles.write(dir.resolve("report.md"), md.getBytes(StandardCharsets.UTF_8));
    }

    private static void merge(Map<Attribute, long[]> into, Map<Attribute, long[]> more) {
        more.forEach((a, v) -> {
            long[] old = into.get(a);
            if (old == null) {
                into.put(a, v);
                return;
            }
            long[] joined = Arrays.copyOf(old, old.length + v.length);
            System.arraycopy(v, 0, joined, old.length, v.length);
            into.put(a, joined);
        });
    }
}
