package dev.perfusion.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.javalin.http.sse.SseClient;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Server-sent events: every page that listens gets each job's whole state as a {@code job} event when it changes (a
 * progress change at most every {@value #MIN_INTERVAL_MS} ms per job; a change of state, a new picture or message
 * always), and the state of
 * every job when it connects, so that a reloaded page picks up the running ones.
 */
final class Events {
    private static final long MIN_INTERVAL_MS = 150;

    private final ObjectMapper json;
    private final CopyOnWriteArrayList<SseClient> clients = new CopyOnWriteArrayList<>();
    /** Per job, the last state sent and when. */
    private final Map<String, Sent> sent = new ConcurrentHashMap<>();

    private record Sent(Job.State state, int milestones, long at) {}

    Events(ObjectMapper json) {
        this.json = json;
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

    private void send(SseClient client, Map<String, Object> view) {
        String data;
        try {
            data = json.writeValueAsString(view);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException("a job's state could not be written as JSON", e);
        }
        synchronized (client) {
            if (!client.terminated()) client.sendEvent("job", data);
        }
        if (client.terminated()) clients.remove(client);
    }

    int listeners() { return clients.size(); }
}
