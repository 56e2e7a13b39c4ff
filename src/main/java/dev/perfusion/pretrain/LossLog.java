package dev.perfusion.pretrain;

import dev.perfusion.eval.Plot;
import dev.perfusion.io.Png;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * The work folder's {@code losses.csv}: one line per step of every stage and run ({@code stage,step,loss,seconds,run},
 * seconds since the run started, the run named by when it started and its process), and its plot. Lines written
 * before the run column have four fields.
 */
final class LossLog {
    private static final Map<String, String> TITLES = new LinkedHashMap<>();
    static {
        TITLES.put("contrastive", "text and image towers (InfoNCE)");
        TITLES.put("vae", "VAE (weighted L1)");
        TITLES.put("diffusion", "UNet, with the text encoder unless frozen (epsilon MSE)");
        TITLES.put("decoder", "VAE decoder fine-tuning (L1)");
        TITLES.put(DecoderStage.CRITIC, "the decoder's patch critic (hinge loss; 1 where it cannot tell)");
        TITLES.put(DiffusionStage.LOCALIZATION, "cross-attention localization (object words read outside their objects)");
    }

    private final Path csv, png;
    /** This run's name in the log (null where the log is only read). */
    private final String run;

    /** The log of the run named {@code run}. */
    LossLog(Path csv, Path png, String run) {
        this.csv = csv;
        this.png = png;
        this.run = run;
    }

    /** The log, to read. */
    LossLog(Path csv, Path png) {
        this(csv, png, null);
    }

    void append(String stage, int step, double loss, double seconds) throws IOException {
        if (run == null) throw new IllegalStateException("a log opened to read");
        String line = String.format(Locale.ROOT, "%s,%d,%.6f,%.1f,%s%n", stage, step, loss, seconds, run);
        if (!Files.exists(csv)) line = "stage,step,loss,seconds,run\n" + line;
        Files.writeString(csv, line, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }

    /**
     * The seconds of every run together, each run's last time (a decoder stage run beside the main run, whose lines
     * interleave, counts its own). Lines from before the run column: each run's clock starts at 0, so a time below the
     * last such line's is a new run's.
     */
    double totalSeconds() throws IOException {
        if (!Files.isRegularFile(csv)) return 0;
        Map<String, Double> lastOfRun = new LinkedHashMap<>();
        double unnamed = 0, last = 0;
        for (String line : Files.readAllLines(csv)) {
            String[] f = line.split(",");
            if (f.length < 4 || f[0].equals("stage")) continue;
            double t = Double.parseDouble(f[3]);
            if (f.length > 4) {
                lastOfRun.merge(f[4], t, Math::max);
                continue;
            }
            if (t < last) unnamed += last;
            last = t;
        }
        return unnamed + last + lastOfRun.values().stream().mapToDouble(Double::doubleValue).sum();
    }

    /**
     * The loss curves of every stage, in training order (means over 50 steps; the last run's values where a run was
     * resumed); no picture before a stage has 50 steps.
     */
    void plot() throws IOException {
        Map<String, TreeMap<Integer, Double>> byStage = new LinkedHashMap<>();
        for (String stage : TITLES.keySet()) byStage.put(stage, new TreeMap<>());
        for (String line : Files.readAllLines(csv)) {
            String[] f = line.split(",");
            if (f.length < 4 || !TITLES.containsKey(f[0])) continue;
            byStage.get(f[0]).put(Integer.parseInt(f[1]), Double.parseDouble(f[2]));
        }
        List<BufferedImage> panels = new ArrayList<>();
        for (Map.Entry<String, TreeMap<Integer, Double>> e : byStage.entrySet()) {
            List<Plot.Point> points = new ArrayList<>();
            double sum = 0;
            int n = 0;
            for (Map.Entry<Integer, Double> p : e.getValue().entrySet()) {
                sum += p.getValue();
                if (++n == 50) {
                    points.add(new Plot.Point(p.getKey(), sum / n, ""));
                    sum = 0;
                    n = 0;
                }
            }
            if (points.isEmpty()) continue;
            panels.add(new Plot(TITLES.get(e.getKey()), "step", "loss, mean of 50 steps").add(e.getKey(), points).render(640, 400));
        }
        if (panels.isEmpty()) return;
        BufferedImage out = new BufferedImage(640 * panels.size(), 400, BufferedImage.TYPE_INT_RGB);
        var g = out.createGraphics();
        for (int i = 0; i < panels.size(); i++) g.drawImage(panels.get(i), 640 * i, 0, null);
        g.dispose();
        Png.write(png, out, Map.of());
    }
}
