package dev.perfusion.io.pickle;

import java.io.IOException;

/** A checkpoint that the restricted unpickler refuses or cannot read; the message names the file and what was wrong. */
public final class PickleException extends IOException {
    public PickleException(String message) {
        super(message);
    }
}
