package dev.perfusion.io;

import java.util.ArrayList;
import java.util.List;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/** The lines {@link ConfigJson} logs at DEBUG while a piece of code runs (System.Logger goes to java.util.logging). */
public final class ConfigLog {
    private ConfigLog() {}

    public interface Action {
        void run() throws Exception;
    }

    public static List<String> during(Action action) throws Exception {
        Logger log = Logger.getLogger(ConfigJson.class.getName());
        List<String> lines = new ArrayList<>();
        Handler capture = new Handler() {
            @Override public void publish(LogRecord r) { lines.add(r.getMessage()); }
            @Override public void flush() {}
            @Override public void close() {}
        };
        Level before = log.getLevel();
        log.setLevel(Level.FINE);
        log.addHandler(capture);
        try {
            action.run();
        } finally {
            log.removeHandler(capture);
            log.setLevel(before);
        }
        return lines;
    }
}
