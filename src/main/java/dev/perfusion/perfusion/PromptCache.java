package dev.perfusion.perfusion;

import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;

import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The per-prompt state of a {@link ConceptGate}, keyed by the identity of the encodings tensor: its native
 * TensorImpl (shared by every Java wrapper and shallow copy of it) and its version counter (bumped by in-place
 * writes). Each entry holds its own reference to E, so the TensorImpl cannot be freed and its address reused
 * while the entry lives; all held tensors outlive the caller's scopes until the entry is evicted.
 * Least recently used entries go first; an entry whose E requires grad (a training step) evicts the oldest ones
 * that do beyond {@link #holdGraphs the graph limit} (one unless training runs parts of a step side by side), so
 * no more than one step's autograd graphs are held. A prompt whose keys are locked is held, with its key encodings'
 * entry, outside the capacity: the lock is asked once per picture, so an evicted one would leave the rest of the
 * picture's steps unlocked (pictures drawn side by side outnumbered the entries); both go when the picture is drawn
 * ({@link #remove}) or the cache is cleared.
 */
final class PromptCache {
    private record Key(long tensorImpl, long version) {
        static Key of(Tensor t) {
            return new Key(t.unsafeGetTensorImpl().address(), t._version());
        }
    }

    private record Memo(Tensor output, long[] versions) {}

    static final class Entry {
        private final Tensor encodings;
        private final boolean requiresGrad;
        /** Held until its picture is drawn ({@link #lock}): never evicted, not counted against the capacity. */
        private boolean held;
        private GatedEncoding gated;
        private boolean gatedWithGraph;
        private Tensor keyEncodings;
        /**
         * Gate constants for this E alone, one set per equal block of its rows (micro-batches fused into one batch,
         * each with the i* it saw), or empty for the gate's own.
         */
        private List<ConceptGate.Constants> boundConstants = List.of();
        private final Map<Object, Memo> outputs = new IdentityHashMap<>();

        private Entry(Tensor encodings) {
            this.encodings = retain(encodings);
            this.requiresGrad = encodings.requires_grad();
        }

        GatedEncoding gated() { return gated; }

        /** True when the gate state was computed with autograd recording from an E that requires grad. */
        boolean gatedWithGraph() { return gatedWithGraph; }

        void setGated(GatedEncoding g, boolean withGraph) {
            releaseGated();
            gated = new GatedEncoding(retain(g.encodings()), retain(g.s()), retain(g.gate()), retain(g.eOrth()));
            gatedWithGraph = withGraph;
        }

        private void releaseGated() {
            if (gated != null) {
                release(gated.encodings());
                release(gated.s());
                release(gated.gate());
                release(gated.eOrth());
                gated = null;
            }
        }

        Tensor keyEncodings() { return keyEncodings; }

        List<ConceptGate.Constants> boundConstants() { return boundConstants; }

        /** Binds this E's row blocks to their own gate constants; any gate state computed with others is dropped. */
        void bind(List<ConceptGate.Constants> constants) {
            boundConstants.forEach(ConceptGate.Constants::release);
            boundConstants = List.copyOf(constants);
            releaseGated();
            releaseMemos();
        }

        void setKeyEncodings(Tensor k) {
            release(keyEncodings);
            keyEncodings = retain(k);
            releaseMemos();
        }

        Tensor memo(Object owner, long[] versions) {
            Memo m = outputs.get(owner);
            return m != null && Arrays.equals(m.versions(), versions) ? m.output() : null;
        }

        void memoise(Object owner, long[] versions, Tensor output) {
            Memo old = outputs.put(owner, new Memo(retain(output), versions.clone()));
            if (old != null) release(old.output());
        }

        private void releaseMemos() {
            outputs.values().forEach(m -> release(m.output()));
            outputs.clear();
        }

        private void release() {
            releaseMemos();
            release(keyEncodings);
            releaseGated();
            release(encodings);
            boundConstants.forEach(ConceptGate.Constants::release);
        }

        private static Tensor retain(Tensor t) { return Scope.keep(new Tensor(t)); }

        private static void release(Tensor t) { if (t != null) t.releaseReference(); }
    }

    private int capacity;
    private int graphLimit = 1;
    private final LinkedHashMap<Key, Entry> entries = new LinkedHashMap<>(16, 0.75f, true);

    PromptCache(int capacity) {
        this.capacity = capacity;
    }

    Entry find(Tensor encodings) {
        return entries.get(Key.of(encodings));
    }

    Entry entry(Tensor encodings) {
        return entry(encodings, false);
    }

    /**
     * Locks the keys of the prompt batch {@code encodings} to {@code keyEncodings}: both entries (the prompt's, and the
     * key encodings' own, which the K projections' gate reads at every step) are held until {@link #remove}.
     */
    void lock(Tensor encodings, Tensor keyEncodings) {
        entry(keyEncodings, true);
        entry(encodings, true).setKeyEncodings(keyEncodings);
    }

    private Entry entry(Tensor encodings, boolean hold) {
        Key key = Key.of(encodings);
        Entry e = entries.get(key);
        if (e != null) {
            e.held |= hold;
            return e; // nothing added: no entry to evict (a lookup per layer and step)
        }
        if (encodings.requires_grad()) evictGraphs(graphLimit - 1);
        e = new Entry(encodings);
        e.held = hold;
        entries.put(key, e);
        long unheld = entries.values().stream().filter(x -> !x.held).count();
        for (Iterator<Entry> eldest = entries.values().iterator(); unheld > capacity && eldest.hasNext(); ) {
            Entry old = eldest.next();
            if (old.held || old == e) continue;
            old.release();
            eldest.remove();
            unheld--;
        }
        return e;
    }

    /** Forgets {@code encodings}' entry, and the entry of the key encodings it was locked to, if any (its picture is drawn). */
    void remove(Tensor encodings) {
        Entry e = entries.remove(Key.of(encodings));
        if (e == null) return;
        if (e.keyEncodings != null) {
            Entry keys = entries.remove(Key.of(e.keyEncodings));
            if (keys != null) keys.release();
        }
        e.release();
    }

    int size() { return entries.size(); }

    /**
     * How many entries whose E requires grad may be held at once: the parts of one training step that run side by
     * side (the cache grows to hold them all, since a part whose entry went would lose the i* bound to it).
     */
    void holdGraphs(int limit) {
        if (limit < 1) throw new IllegalArgumentException("the graph limit must be at least 1, got " + limit);
        graphLimit = limit;
        capacity = Math.max(capacity, limit);
    }

    void clear() {
        entries.values().forEach(Entry::release);
        entries.clear();
    }

    /** Evicts the oldest entries whose E requires grad until at most {@code keep} of them are left. */
    private void evictGraphs(int keep) {
        long held = entries.values().stream().filter(e -> e.requiresGrad).count();
        for (Iterator<Entry> it = entries.values().iterator(); it.hasNext() && held > keep; ) {
            Entry e = it.next();
            if (e.requiresGrad) {
                e.release();
                it.remove();
                held--;
            }
        }
    }
}
