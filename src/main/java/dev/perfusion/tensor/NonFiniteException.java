package dev.perfusion.tensor;

/**
 * A computation produced NaN or infinity where only finite numbers make sense (a loss, a trained tensor, latents).
 * Raised instead of carrying on, so that nothing built from the bad values is written or shown as a result.
 */
public final class NonFiniteException extends ArithmeticException {
    public NonFiniteException(String message) {
        super(message);
    }
}
