package dev.perfusion.text;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Learns a byte-level BPE vocabulary in CLIP's format (the same files, read by the same {@link ClipTokenizer})
 * from word counts: repeatedly merges the most frequent adjacent pair (ties broken by the pair's text, so the
 * result is deterministic) until every word is one token or the merge budget is spent.
 */
public final class BpeLearner {
    private BpeLearner() {}

    public static ClipTokenizer learn(Map<String, Long> wordCounts, int maxLength, int maxMerges) {
        Map<String, Long> counts = new TreeMap<>(wordCounts);
        Map<String, List<String>> words = new LinkedHashMap<>();
        for (String w : counts.keySet()) {
            if (w.isBlank() || !w.equals(w.strip())) throw new IllegalArgumentException("not a word: '" + w + "'");
            words.put(w, ClipTokenizer.initialSymbols(w));
        }
        List<String[]> merges = new ArrayList<>();
        while (merges.size() < maxMerges) {
            Map<String, Long> pairs = new TreeMap<>();
            for (Map.Entry<String, List<String>> e : words.entrySet()) {
                List<String> sym = e.getValue();
                for (int i = 0; i + 1 < sym.size(); i++) pairs.merge(sym.get(i) + " " + sym.get(i + 1), counts.get(e.getKey()), Long::sum);
            }
            if (pairs.isEmpty()) break;
            String best = null;
            long bestCount = -1;
            for (Map.Entry<String, Long> p : pairs.entrySet()) {
                if (p.getValue() > bestCount) {
                    best = p.getKey();
                    bestCount = p.getValue();
                }
            }
            String[] pair = best.split(" ", 2);
            merges.add(pair);
            for (List<String> sym : words.values()) {
                for (int i = 0; i + 1 < sym.size(); i++) {
                    if (sym.get(i).equals(pair[0]) && sym.get(i + 1).equals(pair[1])) {
                        sym.set(i, pair[0] + pair[1]);
                        sym.remove(i + 1);
                    }
                }
            }
        }
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (String b : ClipTokenizer.byteSymbols()) vocab.put(b, vocab.size());
        for (String b : ClipTokenizer.byteSymbols()) vocab.put(b + "</w>", vocab.size());
        for (String[] m : merges) vocab.putIfAbsent(m[0] + m[1], vocab.size());
        vocab.put(ClipTokenizer.START_OF_TEXT, vocab.size());
        vocab.put(ClipTokenizer.END_OF_TEXT, vocab.size());
        return ClipTokenizer.of(vocab, merges, maxLength, ClipTokenizer.END_OF_TEXT);
    }
}
