package dev.perfusion.server;

import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * Every generation and training request is a job, run one at a time on one worker thread (the only thread that
 * computes with the model), so requests never wait for work and work never races over the model. A job that fails
 * is marked failed with its error; the worker goes on with the next.
 */
final class JobQueue implements AutoCloseable {
    /** Finished jobs kept for the page beyond the unfinished ones. */
    private static final int KEPT_FINISHED = 100;
    private static final DateTimeFormatter ID_TIME = DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss");

    private final ExecutorService worker = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "perfusion-worker");
        t.setDaemon(true);
        return t;
    });
    private final Map<String, Job> jobs = new LinkedHashMap<>();
    private final AtomicInteger counter = new AtomicInteger();
    private final Consumer<Job> changed;
    private final Function<Path, String> urlOf;

    /**
     * @param changed told of every change of a job (its state or progress), on the thread that made it
     * @param urlOf the URL of a file a job wrote, or null
     */
    JobQueue(Consumer<Job> changed, Function<Path, String> urlOf) {
        this.changed = changed;
        this.urlOf = urlOf;
    }

    /** A new job id: the time, then a counter, so that ids sort by age and never repeat across restarts of the server. */
    String newId() {
        return LocalDateTime.now().format(ID_TIME) + "-" + counter.incrementAndGet();
    }

    /** Queues the work; it runs after every job queued before it. */
    Job submit(String id, Job.Kind kind, String title, Map<String, Object> request, Job.Work work) {
        Job job = new Job(id, kind, title, request, work);
        synchronized (jobs) {
            jobs.put(job.id, job);
            forgetOldest();
        }
        changed.accept(job);
        worker.execute(() -> run(job));
        return job;
    }

    private void run(Job job) {
        if (!job.start()) return; // cancelled while it waited
        changed.accept(job);
        JobProgress progress = new JobProgress(job, () -> changed.accept(job), urlOf);
        try {
            progress.checkCancelled();
            job.work.run(job, progress);
            job.finish(Job.State.DONE, null);
        } catch (JobProgress.Cancelled e) {
            job.finish(Job.State.CANCELLED, null);
        } catch (Exception | Error e) { // an Error too (a missing native library, a class that failed to load): never a job left running
            job.finish(job.cancelRequested.get() ? Job.State.CANCELLED : Job.State.FAILED, describe(e));
        } finally {
            changed.accept(job);
        }
    }

    /** The error as a person reads it: the message (libtorch's first line only), else the kind of error. */
    static String describe(Throwable e) {
        String m = e.getMessage();
        if (m == null || m.isBlank()) return e.getClass().getSimpleName();
        String first = m.strip().lines().findFirst().orElse(m);
        return e instanceof OutOfMemoryError ? "out of memory: " + first : first;
    }

    Optional<Job> get(String id) {
        synchronized (jobs) {
            return Optional.ofNullable(jobs.get(id));
        }
    }

    /** Every job kept, oldest first. */
    List<Job> all() {
        synchronized (jobs) {
            return new ArrayList<>(jobs.values());
        }
    }

    long count(Job.State state) {
        return all().stream().filter(j -> j.state() == state).count();
    }

    /** Cancels a job: at once when queued, at its next progress report when running; false when it had ended. */
    boolean cancel(Job job) {
        boolean cancelling = job.cancel();
        changed.accept(job);
        return cancelling;
    }

    private void forgetOldest() {
        long finished = jobs.values().stream().filter(Job::finished).count();
        for (Iterator<Job> it = jobs.values().iterator(); it.hasNext() && finished > KEPT_FINISHED; ) {
            if (it.next().finished()) {
                it.remove();
                finished--;
            }
        }
    }

    /** Cancels everything and stops the worker, waiting a little for the running job to unwind. */
    @Override
    public void close() {
        for (Job job : all()) job.cancel();
        worker.shutdown();
        try {
            worker.awaitTermination(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
