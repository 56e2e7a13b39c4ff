package dev.perfusion.io;

/** IEEE 754 binary16 ("half", numpy's float16, torch's HalfStorage) values read on the Java side. */
public final class Float16 {
    private Float16() {}

    /** The float a half's 16 bits stand for (exactly: every half is a float). */
    public static float toFloat(short bits) {
        int sign = (bits >> 15) & 1, exponent = (bits >> 10) & 0x1f, mantissa = bits & 0x3ff;
        float magnitude;
        if (exponent == 0) magnitude = mantissa * 0x1p-24f;
        else if (exponent == 31) magnitude = mantissa == 0 ? Float.POSITIVE_INFINITY : Float.NaN;
        else magnitude = Math.scalb(1 + mantissa / 1024f, exponent - 15);
        return sign == 1 ? -magnitude : magnitude;
    }
}
