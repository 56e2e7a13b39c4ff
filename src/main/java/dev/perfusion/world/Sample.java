package dev.perfusion.world;

import java.awt.image.BufferedImage;
import java.util.List;

/**
 * A rendered picture with its caption and labels.
 *
 * @param image TYPE_INT_RGB, square
 * @param masks one soft mask per object (primary first), row-major, values in [0, 1], image-sized
 * @param accessoryMasks likewise, where each object's accessory changes the picture (all 0 for an object without one);
 *                       empty unless the generator was asked for them
 */
public record Sample(BufferedImage image, String caption, Labels labels, List<float[]> masks, List<float[]> accessoryMasks) {
    public int size() {
        return image.getWidth();
    }

    /** Soft mask of the primary object. */
    public float[] mask() {
        return masks.get(0);
    }

    /** A mask as an 8-bit grey image, for saving or viewing. */
    public BufferedImage maskImage(int index) {
        int n = size();
        BufferedImage out = new BufferedImage(n, n, BufferedImage.TYPE_BYTE_GRAY);
        float[] m = masks.get(index);
        for (int i = 0; i < m.length; i++) {
            out.getRaster().setSample(i % n, i / n, 0, Math.round(m[i] * 255));
        }
        return out;
    }
}
