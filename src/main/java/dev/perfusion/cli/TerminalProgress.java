package dev.perfusion.cli;

import dev.perfusion.util.Progress;
import dev.perfusion.util.RateClock;
import dev.perfusion.util.Stopping;

import java.io.PrintStream;
import java.util.Locale;

/** A progress bar on a terminal; plain periodic lines when output goes to a log (CI). */
final class TerminalProgress implements Progress {
    private final PrintStream out;
    private final boolean interactive;
    private final RateClock clock = new RateClock();
    private long lastPlainLine;

    TerminalProgress(PrintStream out) {
        this.out = out;
        this.interactive = System.console() != null && !"true".equals(System.getenv("CI"));
    }

    /** Also where a command's work ends once the process is stopping ({@link Stopping#check}). */
    @Override
    public synchronized void update(String task, long done, long total, String detail) {
        Stopping.check();
        long now = System.nanoTime();
        if (clock.update(task, done, total, now)) lastPlainLine = 0; // a new run prints its first line
        double rate = Double.isNaN(clock.rate()) ? 0 : clock.rate();
        String eta = Double.isNaN(clock.secondsLeft()) ? "?" : formatSeconds(clock.secondsLeft());
        double elapsed = clock.elapsedSeconds();
        String stats = String.format(Locale.ROOT, "%d/%d %s %.2f it/s, %s elapsed, %s left", done, total,
                detail == null ? "" : detail, rate, formatSeconds(elapsed), eta).replace("  ", " ");
        if (interactive) {
            int width = 24;
            int filled = total > 0 ? (int) (width * done / total) : 0;
            out.print("\r" + task + " [" + "#".repeat(filled) + ".".repeat(width - filled) + "] " + stats + "   ");
            if (done >= total) out.println();
            out.flush();
        } else {
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
