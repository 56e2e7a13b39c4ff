package dev.perfusion.world;

import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.File;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import javax.imageio.ImageIO;

/**
 * Contact sheet of world samples with their captions, for people to check the world by eye.
 *
 * <pre>
 * java -Djava.awt.headless=true -cp target/classes dev.perfusion.world.WorldPreview OUT.png [N] [SEED] [MODE] [SIZE]
 *   MODE  train (default): training stream samples SEED.. SEED+N-1
 *         heldout: every held-out instance in N/10 views
 *         masks: training samples next to their primary masks
 *         CATEGORY (e.g. cat): N random instances of that category, large and central
 *   SIZE  render size in pixels (default 64; each cell is shown 256 px wide, nearest-neighbour upscaled)
 * </pre>
 */
public final class WorldPreview {
    private static final int CELL = 256;
    private static final int COLUMNS = 6;
    private static final int TEXT = 44;

    public static void main(String[] args) throws IOException {
        System.setProperty("java.awt.headless", "true");
        if (args.length < 1) {
            System.err.println("usage: WorldPreview OUT.png [N] [SEED] [train|heldout|masks|CATEGORY] [SIZE]");
            System.exit(2);
        }
        int n = args.length > 1 ? Integer.parseInt(args[1]) : 24;
        long seed = args.length > 2 ? Long.parseLong(args[2]) : 0;
        String mode = args.length > 3 ? args[3] : "train";
        int size = args.length > 4 ? Integer.parseInt(args[4]) : WorldGenerator.DEFAULT_SIZE;
        WorldGenerator world = new WorldGenerator(size);
        List<BufferedImage> images = new ArrayList<>();
        List<String> captions = new ArrayList<>();
        switch (mode) {
            case "heldout" -> {
                int per = Math.max(1, n / HeldOut.instances().size());
                for (Instance inst : HeldOut.instances()) {
                    for (Sample s : world.views(inst, per, seed * 31 + inst.seed())) {
                        images.add(s.image());
                        captions.add(inst.id() + ": " + s.caption());
                    }
                }
            }
            case "masks" -> {
                for (int i = 0; i < n; i++) {
                    Sample s = world.sample(seed + i);
                    images.add(s.image());
                    captions.add(s.caption());
                    images.add(s.maskImage(0));
                    captions.add("mask " + s.labels().instanceId());
                }
            }
            case "train" -> {
                for (int i = 0; i < n; i++) {
                    Sample s = world.sample(seed + i);
                    images.add(s.image());
                    captions.add(s.caption());
                }
            }
            default -> {
                // A category word: random instances of it, one per scene in turn.
                Category category = Category.of(mode);
                SplittableRandom rng = new SplittableRandom(seed);
                for (int i = 0; i < n; i++) {
                    Instance inst = WorldGenerator.trainingInstance(category, rng);
                    Scene scene = Scene.values()[i % Scene.values().length];
                    Sample s = world.render(SceneSpec.single(inst, scene, Placement.CENTER, Size.LARGE), i);
                    images.add(s.image());
                    captions.add(inst.id() + " " + inst.pattern() + " " + inst.accessory() + ": " + s.caption());
                }
            }
        }
        File out = new File(args[0]);
        ImageIO.write(sheet(images, captions), "png", out);
        System.out.println("wrote " + out.getAbsolutePath() + " (" + images.size() + " pictures)");
    }

    static BufferedImage sheet(List<BufferedImage> images, List<String> captions) {
        int rows = (images.size() + COLUMNS - 1) / COLUMNS;
        BufferedImage sheet = new BufferedImage(COLUMNS * CELL, rows * (CELL + TEXT), BufferedImage.TYPE_INT_RGB);
        Graphics2D g = sheet.createGraphics();
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, sheet.getWidth(), sheet.getHeight());
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        // Nearest-neighbour upscaling shows exactly the pixels the model sees.
        g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_NEAREST_NEIGHBOR);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 13));
        FontMetrics fm = g.getFontMetrics();
        for (int i = 0; i < images.size(); i++) {
            int x = (i % COLUMNS) * CELL;
            int y = (i / COLUMNS) * (CELL + TEXT);
            g.drawImage(images.get(i), x, y, CELL - 4, CELL - 4, null);
            g.setColor(Color.BLACK);
            int line = 0;
            StringBuilder current = new StringBuilder();
            for (String word : captions.get(i).split(" ")) {
                if (fm.stringWidth(current + " " + word) > CELL - 8 && current.length() > 0) {
                    g.drawString(current.toString(), x + 2, y + CELL + 10 + line++ * 15);
                    current.setLength(0);
                }
                current.append(current.length() == 0 ? "" : " ").append(word);
            }
            g.drawString(current.toString(), x + 2, y + CELL + 10 + line * 15);
        }
        g.dispose();
        return sheet;
    }
}
