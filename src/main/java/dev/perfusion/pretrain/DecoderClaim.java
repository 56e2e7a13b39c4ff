package dev.perfusion.pretrain;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.perfusion.io.AtomicFiles;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A work folder's decoder may be trained by the main run at its end or by a decoder-only run beside it
 * ({@code pretrain --decoder-only}), and whichever ends it first leaves the decoder that the other takes as done. Two
 * such runs asking for different decoders were found out only when the second reached its decoder stage, after the
 * first had spent its minutes. So each run that will train the folder's decoder records at its start what it asks,
 * under its kind, and is refused there where the run of the other kind asks otherwise. A run's own earlier record is
 * its to change (nothing of the decoder is trained by asking); the record goes once the decoder stage has finished.
 * Two runs started in the same instant could both pass the check before either had recorded, so {@link #record}
 * checks again and writes under a lock of its own, the operating system's between processes.
 */
final class DecoderClaim {
    static final String FILE = "decoder-asked.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    enum Kind {
        MAIN("main", "the main run"), DECODER_ONLY("decoder-only", "a decoder-only run (--decoder-only)");

        final String key;
        final String what;

        Kind(String key, String what) {
            this.key = key;
            this.what = what;
        }

        Kind other() {
            return this == MAIN ? DECODER_ONLY : MAIN;
        }
    }

    private DecoderClaim() {}

    /** Refuses a run of {@code kind} whose decoder differs from the one the other kind of run in {@code work} asked for. */
    static void check(Path work, BaseModelRecipe recipe, Kind kind) throws IOException {
        JsonNode theirs = recorded(work).get(kind.other().key);
        if (theirs == null) return;
        List<String> differ = BaseModelRecipe.differences(theirs.toString(), StageRecord.DECODER.of(recipe));
        if (!differ.isEmpty()) {
            Path begun = TrainedWeights.checkpointOf(work, Pretrainer.DECODER_STAGE);
            throw new IOException(work + ": " + kind.other().what + " in this folder asked for another decoder (" + String.join("; ", differ)
                    + "), and whichever run ends the decoder stage first leaves the decoder the other takes as done: give the decoder options that "
                    + "run asked for, or remove " + work.resolve(FILE) + (Files.exists(begun) ? " and the decoder it began, " + begun : "")
                    + " if that run will not go on");
        }
    }

    /**
     * Records what a run of {@code kind} asks of the folder's decoder, once its other checks have passed; refused, as by
     * {@link #check}, where the run of the other kind has recorded another decoder since.
     */
    static void record(Path work, BaseModelRecipe recipe, Kind kind) throws IOException {
        try (Locked locked = Locked.of(work)) {
            check(work, recipe, kind);
            ObjectNode all = recorded(work);
            all.set(kind.key, StageRecord.DECODER.of(recipe));
            AtomicFiles.write(work.resolve(FILE), JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(all));
        }
    }

    /** Once the decoder stage has finished, its own record ({@link StageRecord#DECODER}) says what it was trained with. */
    static void clear(Path work) throws IOException {
        try (Locked locked = Locked.of(work)) {
            Files.deleteIfExists(work.resolve(FILE));
        }
    }

    /**
     * The record's lock while it is read and written: the operating system's between processes, an in-process lock
     * between this process's threads (the operating system's lock is per process). Held for milliseconds, so a second
     * run waits. Not to be taken twice by one thread: a second channel's lock on the file would fail, and closing that
     * channel would drop the first one's lock unsaid.
     */
    record Locked(FileChannel channel) implements AutoCloseable {
        private static final ReentrantLock IN_THIS_PROCESS = new ReentrantLock();
        private static final String LOCK_FILE = ".decoder-asked.lock";

        static Locked of(Path work) throws IOException {
            Files.createDirectories(work);
            if (IN_THIS_PROCESS.isHeldByCurrentThread()) throw new IllegalStateException("the decoder claim's lock of " + work + " is held by this thread already");
            IN_THIS_PROCESS.lock();
            FileChannel channel = null;
            boolean taken = false;
            try {
                channel = FileChannel.open(work.resolve(LOCK_FILE), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                channel.lock();
                taken = true;
                return new Locked(channel);
            } finally {
                if (!taken) {
                    try {
                        if (channel != null) channel.close();
                    } finally {
                        IN_THIS_PROCESS.unlock();
                    }
                }
            }
        }

        @Override
        public void close() throws IOException {
            try {
                channel.close(); // releases the operating system's lock
            } finally {
                IN_THIS_PROCESS.unlock();
            }
        }
    }

    private static ObjectNode recorded(Path work) throws IOException {
        Path file = work.resolve(FILE);
        if (!Files.isRegularFile(file)) return JSON.createObjectNode();
        JsonNode n;
        try {
            n = JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new IOException(file + ": not the record of what the folder's runs ask of its decoder (" + e.getMessage() + "); remove it to go on", e);
        }
        if (!(n instanceof ObjectNode o)) throw new IOException(file + ": not the record of what the folder's runs ask of its decoder (a JSON object); remove it to go on");
        return o;
    }
}
