package dev.perfusion.tensor;

import dev.perfusion.pipeline.SeededNoise;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

class ThreadsTest {
    @Test
    void testsRunOnTheAllocatorTheLauncherSets() throws IOException {
        Matcher launcher = Pattern.compile("GLIBC_TUNABLES=\"\\$\\{GLIBC_TUNABLES:-([^}]+)}\"").matcher(Files.readString(Path.of("perfusion")));
        assertTrue(launcher.find(), "the launcher sets GLIBC_TUNABLES unless the user did");
        assertEquals(launcher.group(1), System.getenv("GLIBC_TUNABLES"), "pom.xml gives the tests the launcher's tunables");
        String described = Threads.describeAllocator();
        assertTrue(described.contains("freed memory kept for reuse") && described.contains("huge pages asked for"), described);
        assertTrue(List.of("always", "madvise", "never", "unknown").contains(Threads.hugePagePolicy()), Threads.hugePagePolicy());
    }

    @Test
    void partsRunSideBySideOnOneThreadEachAndComeBackInOrder() throws InterruptedException {
        int before = Threads.configured();
        try {
            Threads.use(2);
            if (System.getenv("OPENBLAS_NUM_THREADS") == null) {
                assertEquals(1, Threads.blasThreads(), "OpenBLAS computes on the calling thread beside libtorch's pool");
                assertEquals(1, (int) Threads.withBlasOnEveryCore(() -> Threads.blasThreads() == Threads.cores() ? 1 : 0), "a benchmark's every core");
                assertEquals(1, Threads.blasThreads(), "and back");
            }
            try (Threads.SideBySide side = Threads.sideBySide(2, "test-parts")) {
                assertEquals(1, torch.get_num_threads(), "the opening thread computes on one thread meanwhile");
                List<Integer> counts = side.run(4, k -> torch.get_num_threads());
                assertEquals(List.of(1, 1, 1, 1), counts, "each part on one libtorch thread");
                List<String> names = side.run(3, k -> k + ":" + Thread.currentThread().getName().startsWith("test-parts"));
                assertEquals(List.of("0:true", "1:true", "2:true"), names, "results in part order, computed on the workers");
                int[] elsewhere = {0};
                Thread other = new Thread(() -> elsewhere[0] = torch.get_num_threads()); // e.g. a web request's thread
                other.start();
                other.join();
                assertEquals(2, elsewhere[0], "a thread that first computes meanwhile still gets every configured thread");
            }
            assertEquals(2, torch.get_num_threads(), "the configured count is back");
        } finally {
            Threads.use(before);
        }
    }

    /**
     * A channels-last convolution computed beside another thread takes oneDNN's NCHW kernels (its channels-last ones
     * are not safe to build on two threads at once: see Ops.nchw), forward and backward, with the same values; alone,
     * it keeps the channels-last kernels.
     */
    @Test
    void channelsLastConvolutionsBesideOtherThreadsComputeInNchw() {
        java.util.function.Function<Boolean, double[]> convolve = besideOthers -> {
            try (Scope s = Scope.open()) {
                assertEquals(besideOthers, Threads.besideOthers());
                Tensor x = new SeededNoise(1).randn(new long[] {2, 32, 8, 8}).contiguous(torch.MemoryFormat.ChannelsLast).requires_grad_(true);
                Tensor w = new SeededNoise(2).randn(new long[] {32, 32, 3, 3}).mul(new Scalar(0.06)).contiguous(torch.MemoryFormat.ChannelsLast);
                Tensor out = Ops.conv2d(x, w, null, 1, 1);
                out.square().sum().backward();
                return new double[] {out.is_contiguous() ? 1 : 0, Ops.item(out.square().sum()), Ops.item(x.grad().abs().sum())};
            }
        };
        double[] alone = convolve.apply(false);
        assertEquals(0, alone[0], "alone: the channels-last kernels, a channels-last result");
        try (Threads.SideBySide side = Threads.sideBySide(2, "test-parts")) {
            for (double[] beside : side.run(2, k -> convolve.apply(true))) {
                assertEquals(1, beside[0], "beside another thread: an NCHW result");
                assertEquals(alone[1], beside[1], 1e-4 * alone[1], "the same convolution");
                assertEquals(alone[2], beside[2], 1e-4 * alone[2], "the same input gradient");
            }
        }
    }

    @Test
    void eachPartOfOneOperationRunsOnceAtOnceAndAFailureComesBackAfterAll() {
        java.util.Set<String> threads = java.util.concurrent.ConcurrentHashMap.newKeySet();
        AtomicInteger ran = new AtomicInteger();
        Threads.eachAPart(3, k -> {
            ran.addAndGet(1 << (4 * k));
            threads.add(Thread.currentThread().getName());
        });
        assertEquals(0x111, ran.get(), "parts 0, 1 and 2 once each");
        assertTrue(threads.contains(Thread.currentThread().getName()) && threads.size() == 3, "part 0 here, the others beside: " + threads);
        AtomicInteger ended = new AtomicInteger();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Threads.eachAPart(2, k -> {
            ended.incrementAndGet();
            if (k == 1) throw new IllegalStateException("part 1 failed");
        }));
        assertEquals("part 1 failed", e.getMessage());
        assertEquals(2, ended.get(), "both parts ran before the failure was thrown");
    }

    /**
     * Each new thread costs a glibc arena that keeps its peak: the web app's trainings made two new workers each, and
     * grew by 125 MB a training. The workers now serve one side-by-side work after another; one nested inside a worker
     * gets workers of its own (none waits for itself); a pool closed with a task still running is not reused.
     */
    @Test
    void workersServeOneSideBySideWorkAfterAnotherAndANestedOneGetsItsOwn() throws Exception {
        java.util.function.Function<String, java.util.Set<Thread>> workersOf = name -> {
            try (Threads.SideBySide side = Threads.sideBySide(2, name)) {
                java.util.concurrent.CountDownLatch both = new java.util.concurrent.CountDownLatch(2);
                return new java.util.HashSet<>(side.run(2, k -> {
                    both.countDown();
                    try {
                        assertTrue(both.await(1, java.util.concurrent.TimeUnit.MINUTES), "the two parts run at once");
                    } catch (InterruptedException e) {
                        throw new IllegalStateException(e);
                    }
                    assertTrue(Thread.currentThread().getName().startsWith(name + "-"), Thread.currentThread().getName());
                    return Thread.currentThread();
                }));
            }
        };
        java.util.Set<Thread> first = workersOf.apply("test-first");
        assertEquals(2, first.size());
        assertEquals(first, workersOf.apply("test-second"), "the same two threads, named after the work they do");
        try (Threads.SideBySide outer = Threads.sideBySide(2, "test-outer")) {
            List<java.util.Set<Thread>> inner = outer.run(2, k -> workersOf.apply("test-inner-" + k));
            assertEquals(2, inner.size(), "both nested works ended");
            // the outer work holds the first two threads, so each nested one runs on others
            for (java.util.Set<Thread> threads : inner) assertTrue(java.util.Collections.disjoint(first, threads), threads.toString());
        }
        java.util.concurrent.CountDownLatch started = new java.util.concurrent.CountDownLatch(1), release = new java.util.concurrent.CountDownLatch(1);
        java.util.Set<Thread> busy = java.util.concurrent.ConcurrentHashMap.newKeySet();
        try (Threads.SideBySide side = Threads.sideBySide(2, "test-busy")) {
            side.async(() -> {
                busy.add(Thread.currentThread());
                started.countDown();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt(); // stopped with its pool
                }
                return 0;
            });
            assertTrue(started.await(1, java.util.concurrent.TimeUnit.MINUTES), "a guard, not a speed check");
        }
        release.countDown();
        java.util.Set<Thread> after = workersOf.apply("test-after");
        assertTrue(java.util.Collections.disjoint(busy, after), "a worker left computing is not handed out again");
    }

    @Test
    void aFailingPartIsThrownOnceEveryPartHasEnded() {
        AtomicInteger ended = new AtomicInteger();
        try (Threads.SideBySide side = Threads.sideBySide(2, "test-failing")) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> side.run(4, k -> {
                try {
                    if (k == 0) throw new IllegalStateException("part 0 failed");
                    Thread.sleep(50);
                    return k;
                } catch (InterruptedException ie) {
                    throw new RuntimeException(ie);
                } finally {
                    ended.incrementAndGet();
                }
            }));
            assertEquals("part 0 failed", e.getMessage());
            assertEquals(4, ended.get(), "no part was still running when the failure came back");
        }
        assertThrows(IllegalArgumentException.class, () -> Threads.sideBySide(0, "none"));
    }
}
