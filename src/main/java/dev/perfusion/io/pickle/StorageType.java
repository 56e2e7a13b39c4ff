package dev.perfusion.io.pickle;

import org.bytedeco.pytorch.global.torch;

import java.util.Arrays;
import java.util.Optional;

/**
 * The storage classes {@code torch.save} names in a checkpoint ({@code torch.FloatStorage}, ...): each one dtype,
 * with its safetensors code (what {@code inspect} prints) and element size.
 */
public enum StorageType {
    DOUBLE("DoubleStorage", "F64", 8, torch.ScalarType.Double),
    FLOAT("FloatStorage", "F32", 4, torch.ScalarType.Float),
    HALF("HalfStorage", "F16", 2, torch.ScalarType.Half),
    BFLOAT16("BFloat16Storage", "BF16", 2, torch.ScalarType.BFloat16),
    LONG("LongStorage", "I64", 8, torch.ScalarType.Long),
    INT("IntStorage", "I32", 4, torch.ScalarType.Int),
    SHORT("ShortStorage", "I16", 2, torch.ScalarType.Short),
    CHAR("CharStorage", "I8", 1, torch.ScalarType.Char),
    BYTE("ByteStorage", "U8", 1, torch.ScalarType.Byte),
    BOOL("BoolStorage", "BOOL", 1, torch.ScalarType.Bool);

    /** The class name in module {@code torch}. */
    public final String className;
    /** The dtype as safetensors names it. */
    public final String code;
    public final int elementSize;
    public final torch.ScalarType scalarType;

    StorageType(String className, String code, int elementSize, torch.ScalarType scalarType) {
        this.className = className;
        this.code = code;
        this.elementSize = elementSize;
        this.scalarType = scalarType;
    }

    /** The storage type {@code torch.<className>} names, if it is one of these. */
    public static Optional<StorageType> ofClass(String className) {
        return Arrays.stream(values()).filter(t -> t.className.equals(className)).findFirst();
    }
}
