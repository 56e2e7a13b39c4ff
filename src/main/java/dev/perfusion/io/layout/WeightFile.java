package dev.perfusion.io.layout;

import dev.perfusion.io.Safetensors;
import dev.perfusion.io.StateDict;
import dev.perfusion.io.pickle.TorchCheckpoint;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/** One file of weights: safetensors, or a PyTorch checkpoint read by the restricted unpickler ({@link TorchCheckpoint}). */
public final class WeightFile {
    private WeightFile() {}

    /** The extensions torch.save files go by. */
    static boolean torchName(Path file) {
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        return name.endsWith(".ckpt") || name.endsWith(".pt") || name.endsWith(".pth") || name.endsWith(".bin");
    }

    /**
     * Whether {@code file} is a PyTorch checkpoint: by content (torch.save writes a zip archive or, in the legacy format,
     * a pickle), else by extension; a safetensors header (an 8-byte length, then '{') says it is not.
     */
    public static boolean isTorch(Path file) throws IOException {
        byte[] head = new byte[9];
        int n;
        try (InputStream in = Files.newInputStream(file)) {
            n = in.readNBytes(head, 0, head.length);
        }
        if (n == 9 && head[8] == '{') return false;
        return TorchCheckpoint.looksLike(file) || torchName(file);
    }

    /** Opens the file's header (or pickle); no tensor data is read. */
    public static StateDict open(Path file) throws IOException {
        return isTorch(file) ? TorchCheckpoint.open(file) : Safetensors.open(file);
    }

    /** What kind of file it is, for {@code inspect}: "safetensors" or the checkpoint's format. */
    public static String describe(StateDict weights) {
        if (weights instanceof TorchCheckpoint c) return c.format().description;
        if (weights instanceof Safetensors) return "safetensors";
        return "weights";
    }
}
