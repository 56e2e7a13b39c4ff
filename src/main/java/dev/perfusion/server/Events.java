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
    private final CopyOnWriteArrayList<SseClient> clients = new CopyOnWriteArrayList<>();
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

    /** A page listening from now on: it gets every job's state first. */
    void connect(SseClient client, Iterable<Job> jobs) {
        client.keepAlive();
        client.onClose(() -> clients.remove(client));
        for (Job job : jobs) send(client, job.view());
        clients.add(client);
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
        Map<String, Object> view = job.view();
        for (SseClient client : clients) send(client, view);
    }

    /** A comment to every page: nothing a page shows, but a page that went away is let go. */
    void heartbeat() {
        for (SseClient client : clients) write(client, () -> client.sendComment("heartbeat"));
    }

    private void send(SseClient client, Map<String, Object> view) {
        String data;
        try {
            data = json.writeValueAsString(view);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException("a job's state could not be written as JSON", e);
        }
        write(client, () -> client.sendEvent("job", data));
    }

    private void write(SseClient client, Runnable write) {
        synchronized (client) {
            if (!client.terminated()) write.run();
        }
        if (client.terminated()) clients.remove(client);
    }

    int listeners() { return clients.size(); }

    @Override
    public void close() {
        heartbeats.shutdownNow();
    }
}
