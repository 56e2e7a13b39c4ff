package dev.perfusion.tensor;

import dev.perfusion.util.Stopping;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.openblas.presets.openblas_nolapack;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntConsumer;
import java.util.function.IntFunction;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The CPU threads libtorch computes with. libtorch chooses its own count at start-up, and on some two-core VMs it
 * chooses one, so every command sets it: all cores unless told otherwise. OpenBLAS, which libtorch's fp32 matmuls
 * call, keeps a pool of its own beside libtorch's OpenMP threads, and picks its kernels by the CPU unless
 * {@code OPENBLAS_CORETYPE} forces a family. Its threads keep spinning after each matmul and take the cores from the
 * convolutions and attention that follow, so commands compute OpenBLAS's matmuls on the calling thread
 * ({@code OPENBLAS_NUM_THREADS} says otherwise): the SD 1.5 step at 512 took 10.2-10.5 s so, 12.6-13.1 s with
 * OpenBLAS on both cores (README, Benchmarks).
 *
 * <p>A small model's operations are too small to split: waking a second thread for each of them costs more than it
 * saves (measured on the bundled model: a concept training step 0.31 s on two threads, 0.24 s on one). Its training
 * and its pictures therefore run independent parts of the work {@link #sideBySide side by side} (micro-batches, the
 * next batch, pictures), each part on one thread.
 */
public final class Threads {
    private Threads() {}

    /** The count {@link #use} set, which {@link SideBySide#close} restores; 0 until a command sets one. */
    private static volatile int configured;
    /** Whether this thread already computes on one libtorch thread. */
    private static final ThreadLocal<Boolean> SINGLE = ThreadLocal.withInitial(() -> false);

    public static int cores() { return Runtime.getRuntime().availableProcessors(); }

    /** Sets libtorch's intra-op thread count (convolutions, attention, element-wise work). */
    public static void use(int threads) {
        if (threads < 1) throw new IllegalArgumentException("the thread count must be at least 1, got " + threads);
        Libtorch.ensureLoaded();
        configured = threads;
        torch.set_num_threads(threads);
        openblas_nolapack.blas_set_num_threads(blasDefault());
    }

    /** The thread count commands compute with: the one {@link #use} set, else libtorch's own choice. */
    public static int configured() {
        Libtorch.ensureLoaded();
        return configured > 0 ? configured : torch.get_num_threads();
    }

    /** What each backend uses, for benchmarks: thread counts and the BLAS kernels' CPU family. */
    public static String describe() {
        String blasEnv = System.getenv("OPENBLAS_NUM_THREADS");
        String coreType = System.getenv("OPENBLAS_CORETYPE");
        return "libtorch " + torch.get_num_threads() + " intra-op, " + torch.get_num_interop_threads() + " inter-op (of "
                + cores() + " cores); OpenBLAS " + blasThreads()
                + (blasEnv != null ? " (OPENBLAS_NUM_THREADS)" : " (the calling thread; OPENBLAS_NUM_THREADS to change)")
                + ", kernels " + (coreType != null && !coreType.isBlank() ? "forced to " + coreType + " (OPENBLAS_CORETYPE)" : "chosen for this CPU");
    }

    /**
     * How glibc's malloc, which libtorch allocates tensors with, is set: whether it keeps freed memory for reuse
     * (the launcher's {@code GLIBC_TUNABLES}) or gives each large block back to the kernel (its defaults).
     */
    public static String describeAllocator() {
        String tunables = System.getenv("GLIBC_TUNABLES");
        boolean set = tunables != null && tunables.contains("glibc.malloc.mmap_threshold") && tunables.contains("glibc.malloc.trim_threshold");
        String kept = set ? "glibc malloc, freed memory kept for reuse (GLIBC_TUNABLES=" + tunables + ")"
                : "glibc malloc defaults: freed blocks of 128 KB or more go back to the kernel (start through ./perfusion to keep them)";
        boolean asked = tunables != null && tunables.contains("glibc.malloc.hugetlb=1");
        return kept + "; huge pages " + (asked ? "asked for" : "not asked for") + ", the kernel's policy " + hugePagePolicy();
    }

    /** The kernel's transparent huge page policy (always, madvise or never), or "unknown" where it cannot be read. */
    static String hugePagePolicy() {
        try {
            String modes = Files.readString(Path.of("/sys/kernel/mm/transparent_hugepage/enabled"));
            Matcher m = Pattern.compile("\\[(\\w+)]").matcher(modes);
            return m.find() ? m.group(1) : "unknown";
        } catch (IOException | RuntimeException e) {
            return "unknown";
        }
    }

    /**
     * {@code workers} threads that each compute on one libtorch thread, with OpenBLAS single-threaded too, until
     * {@link SideBySide#close}: for work made of many small operations, split into parts that run at once. The
     * thread that opens it computes on one thread meanwhile, and gets the configured count back at close (unless
     * an enclosing one is still open). With one worker it is just that: this thread on one thread.
     */
    public static SideBySide sideBySide(int workers, String name) {
        if (workers < 1) throw new IllegalArgumentException("side by side needs at least one worker, got " + workers);
        return new SideBySide(workers, name);
    }

    /**
     * Makes the calling thread compute on one libtorch thread. libtorch keeps one count per thread, taken from the
     * process-wide one when the thread first computes, and only {@code set_num_threads} changes it later, which sets
     * the process-wide count too; so another thread sets the process-wide count back at once, and threads that first
     * compute later (a web request's) still get every core.
     */
    private static void singleOnThisThread() {
        if (SINGLE.get()) return;
        int own = torch.get_num_threads(); // this thread's first use: it takes the process-wide count, once
        int processWide = configured > 0 ? configured : own;
        torch.set_num_threads(1);
        SINGLE.set(true);
        if (processWide != 1) {
            try {
                COUNT_SETTER.submit(() -> torch.set_num_threads(processWide)).get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (ExecutionException e) {
                throw new IllegalStateException("could not set libtorch's thread count back to " + processWide, e.getCause());
            }
        }
    }

    /** The thread that sets libtorch's process-wide count back (its own count does not matter: it computes nothing). */
    private static final ExecutorService COUNT_SETTER = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "libtorch-thread-count");
        t.setDaemon(true);
        return t;
    });

    /**
     * Whether this thread may compute beside another: a {@link #sideBySide} worker, or the thread that opened one while
     * it is open.
     */
    public static boolean besideOthers() {
        return SINGLE.get();
    }

    /**
     * Into how many parts one large matmul splits: every configured thread where OpenBLAS computes on the calling
     * thread (the default), else one (OpenBLAS splits it itself, or this thread is one part of side-by-side work).
     */
    public static int partsForOneMatmul() {
        if (SINGLE.get() || blasThreads() != 1) return 1;
        return Math.max(1, configured);
    }

    /** Threads that compute the other parts of one operation beside the calling thread ({@link #eachAPart}). */
    private static ExecutorService partHelpers;
    private static int partHelperCount;

    /**
     * Runs {@code part} for 0 .. parts-1 at once, part 0 on this thread and the others on helper threads, each without
     * gradients and with its native objects freed when it ends; returns when every part has ended.
     */
    public static void eachAPart(int parts, IntConsumer part) {
        if (parts <= 1) {
            runPart(part, 0);
            return;
        }
        ExecutorService helpers = partHelpers(parts - 1);
        List<Future<Object>> others = new ArrayList<>();
        for (int k = 1; k < parts; k++) {
            int index = k;
            others.add(helpers.submit(() -> {
                runPart(part, index);
                return null;
            }));
        }
        Throwable here = null;
        try {
            runPart(part, 0);
        } catch (RuntimeException | Error e) {
            here = e;
        }
        try {
            awaitAll(others);
        } catch (RuntimeException | Error e) {
            if (here == null) throw e;
        }
        rethrow(here);
    }

    /**
     * Every part's result in part order (null for a failed one), once every part has ended, even when this thread is
     * interrupted meanwhile: the parts compute on native memory that the caller frees once this returns. Then the
     * first failure is thrown.
     */
    private static <T> List<T> awaitAll(List<Future<T>> parts) {
        List<T> results = new ArrayList<>(parts.size());
        Throwable failure = null;
        boolean interrupted = false;
        for (Future<T> f : parts) {
            while (true) {
                try {
                    results.add(f.get());
                } catch (InterruptedException e) {
                    interrupted = true;
                    continue;
                } catch (ExecutionException e) {
                    if (failure == null) failure = e.getCause();
                    results.add(null);
                }
                break;
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
        rethrow(failure);
        return results;
    }

    private static void rethrow(Throwable failure) {
        if (failure instanceof RuntimeException re) throw re;
        if (failure instanceof Error err) throw err;
        if (failure != null) throw new IllegalStateException(failure);
    }

    private static void runPart(IntConsumer part, int index) {
        try (PointerScope pointers = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
            part.accept(index);
        }
    }

    private static synchronized ExecutorService partHelpers(int count) {
        if (partHelpers == null || partHelperCount < count) {
            if (partHelpers != null) partHelpers.shutdown();
            partHelpers = daemonPool(count, "operation-part");
            partHelperCount = count;
        }
        return partHelpers;
    }

    /** {@code count} threads named {@code name-0, name-1, ...}, each knowing its index, that do not keep the JVM alive. */
    private static ExecutorService daemonPool(int count, String name) {
        int[] index = {0};
        return Executors.newFixedThreadPool(count, r -> {
            int k = index[0]++;
            Thread t = new Thread(() -> {
                WORKER_INDEX.set(k);
                r.run();
            }, name + "-" + k);
            t.setDaemon(true);
            return t;
        });
    }

    /** Runs {@code work} with OpenBLAS on every core, then sets its count back: how benchmarks measure the machine. */
    public static <T> T withBlasOnEveryCore(Supplier<T> work) {
        Libtorch.ensureLoaded();
        int before = openblas_nolapack.blas_get_num_threads();
        openblas_nolapack.blas_set_num_threads(cores());
        try {
            return work.get();
        } finally {
            openblas_nolapack.blas_set_num_threads(before);
        }
    }

    /** The OpenBLAS thread count commands compute with. */
    public static int blasThreads() {
        Libtorch.ensureLoaded();
        return openblas_nolapack.blas_get_num_threads();
    }

    /** OpenBLAS's count for commands: {@code OPENBLAS_NUM_THREADS}, else one (see the class comment). */
    private static int blasDefault() {
        try {
            String env = System.getenv("OPENBLAS_NUM_THREADS");
            if (env != null) return Math.max(1, Integer.parseInt(env.trim()));
        } catch (NumberFormatException e) {
            // OpenBLAS ignores a value it cannot read, and so do we
        }
        return 1;
    }

    /** A worker's place in its pool, for its name. */
    private static final ThreadLocal<Integer> WORKER_INDEX = ThreadLocal.withInitial(() -> 0);

    /**
     * Side-by-side worker pools between uses. Every new thread that allocates gets a glibc arena of its own (up to
     * eight per core), and with the launcher's tunables an arena keeps its peak for reuse: a web app that made two new
     * workers for every training grew by an arena's peak each time (the bundled model: 125 MB a training, 0.71 -> 1.56
     * GB over eight). Reused workers keep the memory of one. A nested side-by-side takes another pool (this one is in
     * use), so no worker ever waits for itself.
     */
    private static final class IdleWorkers {
        /** At most this many pools wait between uses; more are shut down. */
        private static final int KEPT = 4;
        private static final Deque<ExecutorService> IDLE = new ArrayDeque<>();
        private static final Map<ExecutorService, Integer> SIZES = new IdentityHashMap<>();

        static synchronized ExecutorService take(int workers) {
            for (Iterator<ExecutorService> it = IDLE.iterator(); it.hasNext(); ) {
                ExecutorService pool = it.next();
                if (SIZES.get(pool) == workers) {
                    it.remove();
                    return pool;
                }
            }
            ExecutorService pool = daemonPool(workers, "side-by-side");
            SIZES.put(pool, workers);
            return pool;
        }

        static synchronized void give(ExecutorService pool) {
            IDLE.addFirst(pool);
            while (IDLE.size() > KEPT) {
                ExecutorService oldest = IDLE.removeLast();
                SIZES.remove(oldest);
                oldest.shutdown();
            }
        }
    }

    /** Stops {@code pool} and waits for its running tasks to end (an interrupt does not stop native code), at most a stop's grace. */
    public static void shutDownAndAwait(ExecutorService pool) {
        pool.shutdownNow();
        boolean interrupted = false;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Stopping.GRACE_SECONDS);
        while (!pool.isTerminated() && System.nanoTime() < deadline) {
            try {
                pool.awaitTermination(deadline - System.nanoTime(), TimeUnit.NANOSECONDS);
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
    }

    /** Worker threads for side-by-side parts; see {@link #sideBySide}. */
    public static final class SideBySide implements AutoCloseable {
        private final int workers;
        private final String name;
        private ExecutorService pool;
        /** Whether the opening thread already computed on one thread (an enclosing side-by-side): then it stays so. */
        private final boolean nested;
        private final int restoreTorch;
        private final int restoreBlas;
        /** Tasks handed to the workers that have not ended. */
        private final AtomicInteger inFlight = new AtomicInteger();

        private SideBySide(int workers, String name) {
            Libtorch.ensureLoaded();
            this.workers = workers;
            this.name = name;
            this.nested = SINGLE.get();
            this.restoreTorch = configured();
            this.restoreBlas = openblas_nolapack.blas_get_num_threads();
            singleOnThisThread();
            openblas_nolapack.blas_set_num_threads(1);
        }

        public int workers() { return workers; }

        private synchronized ExecutorService pool() {
            if (pool == null) {
                pool = IdleWorkers.take(workers);
            }
            return pool;
        }

        /** Runs {@code work} on a worker, named after this side-by-side work while it runs, and counts it until it ends. */
        private <T> Supplier<T> onWorker(Supplier<T> work) {
            inFlight.incrementAndGet();
            return () -> {
                Thread.currentThread().setName(name + "-" + WORKER_INDEX.get());
                try {
                    singleOnThisThread();
                    return work.get();
                } finally {
                    inFlight.decrementAndGet();
                }
            };
        }

        /**
         * Runs {@code part(k)} for k = 0..parts-1, side by side on the workers (on the calling thread, with one
         * worker), and returns the results in part order; the first failure is thrown once every part has ended,
         * so no part is still computing when the caller goes on.
         */
        public <T> List<T> run(int parts, IntFunction<T> part) {
            if (workers == 1) {
                List<T> results = new ArrayList<>(parts);
                for (int k = 0; k < parts; k++) results.add(part.apply(k));
                return results;
            }
            List<Future<T>> futures = new ArrayList<>(parts);
            for (int k = 0; k < parts; k++) {
                int p = k;
                futures.add(pool().submit(onWorker(() -> part.apply(p))::get));
            }
            return awaitAll(futures);
        }

        /** Runs {@code work} on a worker, on one thread, while the caller goes on (the next batch while this one trains). */
        public <T> CompletableFuture<T> async(Supplier<T> work) {
            return CompletableFuture.supplyAsync(onWorker(work), pool());
        }

        @Override
        public void close() {
            synchronized (this) {
                // a worker still computing (a failed or stopped step's next batch) is stopped with its pool, and waited for:
                // native memory its caller frees, or a process's exit, must not come while it computes; idle ones serve again
                if (pool != null && inFlight.get() == 0) IdleWorkers.give(pool);
                else if (pool != null) shutDownAndAwait(pool);
                pool = null;
            }
            if (nested) return;
            openblas_nolapack.blas_set_num_threads(restoreBlas > 0 ? restoreBlas : blasDefault());
            torch.set_num_threads(restoreTorch);
            SINGLE.set(false);
        }
    }
}
