package dev.perfusion.io;

import dev.perfusion.tensor.Ops;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Tensors read from a file's bytes straight into the memory of a new tensor (positional reads, no mapping): the file
 * is never a second copy in this process's memory (its pages stay in the kernel's cache, which a mapping would have
 * counted as resident), and a tensor of any size is read in 1 GiB pieces. Shared by the weight readers.
 */
public final class FileTensors {
    private static final long PIECE = 1L << 30;

    private FileTensors() {}

    /**
     * The view {@code shape}/{@code stride} of {@code extent} elements of {@code stored} starting at byte {@code offset},
     * converted to {@code dtype}, contiguous and owning its memory.
     */
    public static Tensor read(Path file, long offset, long extent, torch.ScalarType stored, int itemSize, long[] shape,
                              long[] stride, torch.ScalarType dtype) throws IOException {
        if (extent == 0) return torch.zeros(shape, new TensorOptions(dtype));
        Tensor raw = torch.empty(new long[] {extent}, new TensorOptions(stored), new MemoryFormatOptional());
        long bytes = extent * itemSize;
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            for (long at = 0; at < bytes; at += PIECE) {
                long length = Math.min(PIECE, bytes - at);
                ByteBuffer piece = new BytePointer(raw.data_ptr()).position(at).limit(at + length).asBuffer();
                while (piece.hasRemaining()) {
                    if (ch.read(piece, offset + at + piece.position()) < 0) {
                        throw new EOFException(file + ": ends before byte " + (offset + bytes) + " (truncated?)");
                    }
                }
            }
        }
        boolean dense = extent == Ops.numel(shape) && java.util.Arrays.equals(stride, contiguousStrides(shape));
        Tensor view = dense ? raw.view(shape) : raw.as_strided(shape, stride);
        if (stored == dtype) return dense ? view : view.contiguous();
        return view.to(dtype).contiguous();
    }

    /** A contiguous tensor of {@code shape} at byte {@code offset}. */
    public static Tensor read(Path file, long offset, torch.ScalarType stored, int itemSize, long[] shape, torch.ScalarType dtype)
            throws IOException {
        return read(file, offset, Ops.numel(shape), stored, itemSize, shape, contiguousStrides(shape), dtype);
    }

    /** The strides of a C-contiguous tensor of {@code shape}, in elements. */
    public static long[] contiguousStrides(long[] shape) {
        long[] stride = new long[shape.length];
        long s = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            stride[i] = s;
            s *= shape[i];
        }
        return stride;
    }
}
