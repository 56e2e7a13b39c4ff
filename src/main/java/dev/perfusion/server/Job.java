package dev.perfusion.server;

import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One piece of work the server was asked for (a generation or a training run) and everything the page shows of it:
 * its state, the progress of its current task (steps done, rate, time left), messages, the loss curve, sample
 * pictures and results. Written by the worker, read by request threads through {@link #view}.
 */
final class Job {
    enum Kind { GENERATE, TRAIN }

    enum State { QUEUED, RUNNING, DONE, FAILED, CANCELLED }

    /** What the work does with the job's progress and results. */
    @FunctionalInterface
    interface Work {
        void run(Job job, JobProgress progress) throws Exception;
    }

    final String id;
    final Kind kind;
    final String title;
    /** The request as the client gave it, completed with defaults (the seed drawn for "random"). */
    final Map<String, Object> request;
    final Work work;
    final AtomicBoolean cancelRequested = new AtomicBoolean();

    private State state = State.QUEUED;
    private String error;
    private final Instant created = Instant.now();
    private Instant started, finished;
    private String task = "";
    private long done, total;
    private String detail = "";
    private double stepsPerSecond = Double.NaN, secondsLeft = Double.NaN;
    private final List<String> messages = new ArrayList<>();
    private final List<double[]> loss = new ArrayList<>();
    private final List<String> samples = new ArrayList<>();
    private final List<Map<String, Object>> images = new ArrayList<>();
    private Object result;

    Job(String id, Kind kind, String title, Map<String, Object> request, Work work) {
        this.id = id;
        this.kind = kind;
        this.title = title;
        this.request = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(request));
        this.work = work;
    }

    synchronized State state() { return state; }

    synchronized boolean finished() { return state == State.DONE || state == State.FAILED || state == State.CANCELLED; }

    /** Moves a queued job to running; false when it was cancelled while it waited. */
    synchronized boolean start() {
        if (state != State.QUEUED) return false;
        state = State.RUNNING;
        started = Instant.now();
        return true;
    }

    synchronized void finish(State end, String why) {
        state = end;
        error = why;
        finished = Instant.now();
    }

    /** Cancels a job that has not started; a running one only gets the request (its progress stops it). */
    synchronized boolean cancel() {
        cancelRequested.set(true);
        if (state == State.QUEUED) {
            finish(State.CANCELLED, null);
            return true;
        }
        return state == State.RUNNING;
    }

    synchronized void progress(String task, long done, long total, String detail, double stepsPerSecond, double secondsLeft) {
        this.task = task;
        this.done = done;
        this.total = total;
        this.detail = detail == null ? "" : detail;
        this.stepsPerSecond = stepsPerSecond;
        this.secondsLeft = secondsLeft;
    }

    synchronized void message(String text) { messages.add(text); }

    synchronized void loss(long step, double value) { loss.add(new double[] {step, value}); }

    synchronized void sample(String url) { samples.add(url); }

    synchronized void image(Map<String, Object> image) { images.add(java.util.Collections.unmodifiableMap(new LinkedHashMap<>(image))); }

    synchronized void result(Object value) { result = value; }

    /** How many pictures, samples and messages the job has: what a listener must not miss. */
    synchronized int milestones() { return images.size() + samples.size() + messages.size(); }

    /** A snapshot for JSON: the page's whole picture of the job. */
    synchronized Map<String, Object> view() {
        Map<String, Object> v = new LinkedHashMap<>();
        v.put("id", id);
        v.put("kind", kind.name().toLowerCase(java.util.Locale.ROOT));
        v.put("title", title);
        v.put("state", state.name().toLowerCase(java.util.Locale.ROOT));
        v.put("error", error);
        v.put("created", created.toString());
        v.put("started", started == null ? null : started.toString());
        v.put("finished", finished == null ? null : finished.toString());
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("task", task);
        p.put("done", done);
        p.put("total", total);
        p.put("detail", detail);
        p.put("stepsPerSecond", Double.isFinite(stepsPerSecond) ? stepsPerSecond : null);
        p.put("secondsLeft", Double.isFinite(secondsLeft) ? secondsLeft : null);
        v.put("progress", p);
        v.put("request", request);
        v.put("messages", List.copyOf(messages));
        v.put("loss", List.copyOf(loss));
        v.put("samples", List.copyOf(samples));
        v.put("images", List.copyOf(images));
        v.put("result", result);
        return v;
    }
}
