package dev.perfusion.cli;

import dev.perfusion.util.Progress;

import java.io.PrintStream;
import java.util.Locale;

/** A progress bar on a terminal; plain periodic lines when output goes to a log (CI). */
final class TerminalProgress implements Progress {
    private final PrintStream out;
    private final boolean interactive;
    private long started = System.nanoTime();
    private long doneAtStart;
    private String currentTask = "";
    private long lastDone, lastTotal;
    private long lastPlainLine;

    TerminalProgress(PrintStream out) {
        this.out = out;
        this.interactive = System.console() != null && !"true".equals(System.getenv("CI"));
    }

    @Override
    public synchronized void update(String task, long done, long total, String detail) {
        // another task, or the same task run again (the next picture's denoising, the next concept's training)
        if (!task.equals(currentTask) || done < lastDone || total != lastTotal) {
            currentTask = task;
            started = System.nanoTime();
            // a resumed task starts part-way: its rate counts only the units done here
            doneAtStart = done;
            lastPlainLine = 0;
        }
        lastDone = done;
        lastTotal = total;
        double elapsed = (System.nanoTime() - started) / 1e9;
        double rate = done > doneAtStart ? (done - doneAtStart) / elapsed : 0;
        String eta = rate > 0 && total > 0 ? formatSeconds((total - done) / rate) : "?";
        String stats = String.format(Locale.ROOT, "%d/%d %s %.2f it/s, %s elapsed, %s left", done, total,
                detail == null ? "" : detail, rate, formatSeconds(elapsed), eta).replace("  ", " ");
        if (interactive) {
            int width = 24;
            int filled = total > 0 ? (int) (width * done / total) : 0;
            out.print("\r" + task + " [" + "#".repeat(filled) + ".".repeat(width - filled) + "] " + stats + "   ");
            if (done >= total) out.println();
            out.flush();
        } else {
            long now = System.nanoTime();
            if (done >= total || done == 1 || now - lastPlainLine > 10_000_000_000L) {
                out.println(task + ": " + stats);
                lastPlainLine = now;
            }
        }
    }

    @Override
    public void message(String text) {
        out.println(text);
    }

    static String formatSeconds(double s) {
        if (s < 60) return String.format(Locale.ROOT, "%.1fs", s);
        long t = Math.round(s);
        return t >= 3600 ? String.format(Locale.ROOT, "%dh%02dm", t / 3600, (t % 3600) / 60)
                : String.format(Locale.ROOT, "%dm%02ds", t / 60, t % 60);
    }
}
