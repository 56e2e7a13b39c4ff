package dev.perfusion.cli;

import dev.perfusion.perfusion.CaptionCorpus;
import dev.perfusion.perfusion.CovarianceCache;
import dev.perfusion.perfusion.InputCovariance;
import dev.perfusion.pipeline.StableDiffusion;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "covariance", mixinStandardHelpOptions = true,
        description = {"Compute the input covariance C from your own captions.",
                "C = (1/N) sum of e e^T over every token position of every caption's text encoding (Perfusion's C, ROME's input"
                        + " covariance); written with C^-1 and what it was computed from, for train and generate --covariance."})
final class CovarianceCommand implements Callable<Integer> {
    @Mixin ModelOptions model;

    @Option(names = "--captions", required = true, paramLabel = "FILE", description = "A text file of captions, one a line (UTF-8; blank lines are skipped).")
    Path captions;

    @Option(names = "--out", required = true, paramLabel = "FILE", description = "The .safetensors file to write (C and C^-1, float32).")
    Path out;

    @Override
    public Integer call() throws Exception {
        List<String> lines = CaptionCorpus.fromFile(captions);
        if (Files.isDirectory(out)) throw new IllegalArgumentException("--out " + out + " is a folder; give a file name");
        if (!out.getFileName().toString().toLowerCase(java.util.Locale.ROOT).endsWith(".safetensors")) {
            // a .npy name would hold safetensors bytes that --covariance then reads as a broken .npy
            throw new IllegalArgumentException("--out " + out + ": covariance writes a .safetensors file (C, C^-1 and where they came from); "
                    + "give a name ending in .safetensors");
        }
        FileChecks.writableFolder(out.toAbsolutePath().getParent());
        TerminalProgress progress = new TerminalProgress(System.out);
        long started = System.nanoTime();
        StableDiffusion sd = model.load(progress);
        String encoder = sd.textEncoderHash(); // while its files are the ones read, before minutes of encoding
        InputCovariance c = CovarianceCache.accumulate(sd, lines, progress);
        Map<String, String> provenance = new LinkedHashMap<>();
        provenance.put("corpus", "file " + captions.getFileName());
        provenance.put("corpus_captions_sha256", CaptionCorpus.sha256(lines));
        provenance.put("clip_skip", Integer.toString(sd.clipSkip()));
        c.save(out, encoder, provenance);
        long d = c.dim();
        progress.message(String.format(Locale.ROOT, "wrote %s: C and C^-1 [%d, %d] from %,d captions (%,d token vectors) in %s",
                out, d, d, c.captions(), c.tokens(), TerminalProgress.formatSeconds((System.nanoTime() - started) / 1e9)));
        if (c.tokens() < 10L * d) {
            progress.message(String.format(Locale.ROOT, "note: %,d token vectors for %d dims is few; C is estimated better from"
                    + " many more captions (about 100K are used for Stable Diffusion)", c.tokens(), d));
        }
        return 0;
    }
}
