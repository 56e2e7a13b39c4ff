package dev.perfusion.io.layout;

import dev.perfusion.io.StateDict;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.TreeSet;

/**
 * Deterministic content hashes of a component's weights, to tie files made for a model (Perfusion concepts) to
 * the base model and text encoder they were made with.
 * <p>
 * Both hashes are SHA-256 over, for each tensor in name order (Java String order of the diffusers names): the
 * name in UTF-8, a 0 byte, the rank and each dimension as 8-byte little-endian integers, then values as
 * little-endian float32. Because they hash the diffusers-named view and the values as float32, a model gives
 * the same hash from a diffusers folder and from a single file; storing F16 weights that are exactly
 * representable (as the fixture does) changes nothing, but a rounded F16 copy of an F32 model is another model.
 * <ul>
 * <li>{@link #full}: every value. Exact; costs a pass over all weights (an SD 1.5 UNet is 3.4 GB as float32:
 * seconds).</li>
 * <li>{@link #sampled}: the names and shapes, and per tensor at most {@value #SAMPLES} values at evenly spaced
 * flat indices {@code i * numel / SAMPLES}. Much less hashing; it still reads each tensor once. Any fine-tune
 * changes sampled values; an edit confined to unsampled elements would go unnoticed.</li>
 * </ul>
 * The result is prefixed with the scheme ({@code sha256-f32:} or {@code sha256-f32-sampled4096:}) so the two
 * cannot be mistaken for each other.
 */
public final class WeightHash {
    public static final int SAMPLES = 4096;
    private static final int CHUNK = 1 << 22;

    private WeightHash() {}

    public static String full(StateDict weights) {
        return hash(weights, false);
    }

    public static String sampled(StateDict weights) {
        return hash(weights, true);
    }

    private static String hash(StateDict weights, boolean sampled) {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new UnsupportedOperationException("weight hashes are defined on little-endian float32 bytes");
        }
        MessageDigest digest = sha256();
        ByteBuffer header = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        byte[] chunk = new byte[CHUNK];
        for (String name : new TreeSet<>(weights.keys())) {
            digest.update(name.getBytes(StandardCharsets.UTF_8));
            digest.update((byte) 0);
            long[] shape = weights.shape(name);
            digest.update(header.putLong(0, shape.length).array());
            for (long d : shape) digest.update(header.putLong(0, d).array());
            try (Scope s = Scope.inference()) {
                Tensor values = weights.get(name).to(torch.ScalarType.Float).reshape(-1);
                long n = values.numel();
                if (sampled && n > SAMPLES) {
                    long[] index = new long[SAMPLES];
                    for (int i = 0; i < SAMPLES; i++) index[i] = (long) i * n / SAMPLES;
                    values = values.index_select(0, Ops.fromLongs(index, SAMPLES));
                }
                Tensor c = values.contiguous();
                long bytes = c.numel() * 4;
                BytePointer p = new BytePointer(c.data_ptr()).capacity(bytes);
                for (long off = 0; off < bytes; off += CHUNK) {
                    int len = (int) Math.min(CHUNK, bytes - off);
                    p.position(off).get(chunk, 0, len);
                    digest.update(chunk, 0, len);
                }
            }
        }
        return (sampled ? "sha256-f32-sampled" + SAMPLES + ":" : "sha256-f32:") + HexFormat.of().formatHex(digest.digest());
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is not available", e);
        }
    }
}
