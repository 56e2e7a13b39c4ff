package dev.perfusion.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.javalin.http.sse.SseClient;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Server-sent events: every page that listens gets each job's whole state as a {@code job} event when it changes (a
 * progress change at most every {@value #MIN_INTERVAL_MS} ms per job; a change of state, a new picture or message
 * always), and the state of
 * every job when it connects, so that a reloaded page picks up the running ones. A comment every
 * {@value #HEARTBEAT_SECONDS} s keeps a quiet stream open through proxies that close idle connections, and finds the
 * pages that went away: a closed connection shows only when something is written to it.
 */
final class Events implements AutoCloseable {
    private static final long MIN_INTERVAL_MS = 150;
    static final long HEARTBEAT_SECONDS = 15;

    private final ObjectMapper json;
    private final CopyOnWriteArrayList<Page> pages = new CopyOnWriteArrayList<>();
    /** Per job, the last state sent and when. */
    private final Map<String, Sent> sent = new ConcurrentHashMap<>();

    private record Sent(Job.State state, int milestones, long at) {}

    private final ScheduledExecutorService heartbeats = Executors.newSingleThreadScheduledExecutor(task -> {
        Thread thread = new Thread(task, "perfusion-events-heartbeat");
        thread.setDaemon(true);
        return thread;
    });

    Events(ObjectMapper json) {
        this.json = json;
        heartbeats.scheduleWithFixedDelay(this::heartbeat, HEARTBEAT_SECONDS, HEARTBEAT_SECONDS, TimeUnit.SECONDS);
    }

    /** What the events need of a listening page: an event stream's client, or a test's record of what it was told. */
    interface Page {
        void sendEvent(String event, String data);

        void sendComment(String comment);

        boolean terminated();
    }

    /** A page listening from now on: it gets every job's state first. */
    void connect(SseClient client, Iterable<Job> jobs) {
        client.keepAlive();
        Page page = new Page() {
            @Override public void sendEvent(String event, String data) { client.sendEvent(event, data); }
            @Override public void sendComment(String comment) { client.sendComment(comment); }
            @Override public boolean terminated() { return client.terminated(); }
        };
        client.onClose(() -> pages.remove(page));
        connect(page, jobs);
    }

    void connect(Page page, Iterable<Job> jobs) {
        // listening before the states are read, each read under the page's lock: a job that finishes meanwhile is
        // told twice, or last as finished, never not at all
        pages.add(page);
        for (Job job : jobs) write(page, () -> page.sendEvent("job", data(job.view())));
    }

    /** A job changed: tell every page, unless only its progress changed and it was told a moment ago. */
    void changed(Job job) {
        Job.State state = job.state();
        int milestones = job.milestones();
        long now = System.currentTimeMillis();
        Sent last = sent.get(job.id);
        if (last != null && last.state() == state && last.milestones() == milestones && now - last.at() < MIN_INTERVAL_MS) return;
        sent.put(job.id, new Sent(state, milestones, now));
        if (job.finished()) sent.remove(job.id);
        String data = data(job.view());
        for (Page page : pages) write(page, () -> page.sendEvent("job", data));
    }

    /** A comment to every page: nothing a page shows, but a page that went away is let go. */
    void heartbeat() {
        for (Page page : pages) write(page, () -> page.sendComment("heartbeat"));
    }

    private String data(Map<String, Object> view) {
        try {
            return json.writeValueAsString(view);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException("a job's state could not be written as JSON", e);
        }
    }

    private void write(Page page, Runnable write) {
        synchronized (page) {
            if (!page.terminated()) write.run();
        }
        if (page.terminated()) pages.remove(page);
    }

    int listeners() { return pages.size(); }

    @Override
    public void close() {
        heartbeats.shutdownNow();
    }
}
