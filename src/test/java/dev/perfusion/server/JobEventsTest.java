package dev.perfusion.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** The job queue and the event stream without a server or a model: how a job ends, and what a page is told of it. */
class JobEventsTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** A job whose work throws an Error (a native library or class that fails to load) is failed, not left running. */
    @Test
    void aJobThatThrowsAnErrorFailsAndTheNextRuns() throws InterruptedException {
        CountDownLatch ended = new CountDownLatch(2);
        Job broken, next;
        try (JobQueue queue = new JobQueue(job -> { if (job.finished()) ended.countDown(); }, file -> null)) {
            broken = queue.submit(queue.newId(), Job.Kind.GENERATE, "broken", Map.of(), (job, progress) -> {
                throw new NoClassDefFoundError("sun/awt/FontConfiguration");
            });
            next = queue.submit(queue.newId(), Job.Kind.GENERATE, "next", Map.of(), (job, progress) -> {});
            // a bound on the wait for a hung worker, not a speed check
            assertTrue(ended.await(60, TimeUnit.SECONDS), "both jobs ended: " + broken.state() + ", " + next.state());
        }
        assertEquals(Job.State.FAILED, broken.state());
        assertEquals("sun/awt/FontConfiguration", broken.view().get("error"));
        assertEquals(Job.State.DONE, next.state(), "the worker went on");
    }

    /**
     * A page that connects while a job ends hears that it ended: the job finishes after its state was read for the
     * page and before the page was listening (the iterator ends it between the two), which left the page with a
     * running job until it was reloaded.
     */
    @Test
    void aPageThatConnectsWhileAJobEndsIsToldItEnded() throws IOException {
        Job job = new Job("20261207-000000-1", Job.Kind.GENERATE, "a red car", Map.of(), (j, p) -> {});
        assertTrue(job.start());
        try (Events events = new Events(JSON)) {
            Iterable<Job> endingWhileRead = () -> new Iterator<>() {
                private boolean given;

                @Override
                public boolean hasNext() {
                    if (given && !job.finished()) {
                        job.finish(Job.State.DONE, null);
                        events.changed(job);
                    }
                    return !given;
                }

                @Override
                public Job next() {
                    given = true;
                    return job;
                }
            };
            Recorder page = new Recorder();
            events.connect(page, endingWhileRead);
            assertFalse(page.events.isEmpty());
            JsonNode last = JSON.readTree(page.events.get(page.events.size() - 1));
            assertEquals("done", last.get("state").asText(), "the page's last word on the job: " + page.events);
            assertEquals(1, events.listeners());
        }
    }

    private static final class Recorder implements Events.Page {
        final List<String> events = new ArrayList<>();

        @Override public void sendEvent(String event, String data) { events.add(data); }
        @Override public void sendComment(String comment) {}
        @Override public boolean terminated() { return false; }
    }
}
