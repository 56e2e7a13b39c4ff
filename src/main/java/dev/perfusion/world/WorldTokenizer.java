package dev.perfusion.world;

import dev.perfusion.text.BpeLearner;
import dev.perfusion.text.ClipTokenizer;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The bundled model's tokenizer: BPE learned from the world's caption grammar, each vocabulary word one token; the
 * words of detailed captions ({@link Vocabulary#detailWords()}) only where the recipe's captions use them.
 */
public final class WorldTokenizer {
    private WorldTokenizer() {}

    public static ClipTokenizer create(int maxLength) {
        return create(maxLength, false);
    }

    public static ClipTokenizer create(int maxLength, boolean detailWords) {
        Map<String, Long> counts = new LinkedHashMap<>();
        for (String w : Vocabulary.words()) {
            if (detailWords || !Vocabulary.detailWords().contains(w)) counts.merge(w, 1L, Long::sum);
        }
        WorldGenerator world = new WorldGenerator();
        for (long seed = 0; seed < 2000; seed++) {
            for (String w : Vocabulary.split(world.sample(seed).caption())) counts.merge(w, 1L, Long::sum);
        }
        return BpeLearner.learn(counts, maxLength, 10_000);
    }
}
