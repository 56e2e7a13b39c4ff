package dev.perfusion.text;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.perfusion.io.AtomicFiles;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * CLIP's byte-level BPE tokenizer, behaving like transformers' slow {@code CLIPTokenizer} when ftfy is not installed
 * (the configuration the reference goldens were made with): BERT-style basic normalisation, CLIP's word regex,
 * GPT-2 byte-to-unicode mapping, then BPE by merge rank with {@code </w>} marking the end of each word.
 * Like transformers, the bos/eos/unk/pad strings are never split, so with SD 2.x's pad token {@code !} every
 * exclamation mark in a prompt becomes id 0 rather than part of a punctuation token.
 */
public final class ClipTokenizer {

    /** Ids ready for the text encoder: exactly {@link #maxLength()} of them; {@code droppedTokens} were cut. */
    public record Encoding(long[] ids, boolean truncated, int droppedTokens) {}

    public static final String START_OF_TEXT = "<|startoftext|>";
    public static final String END_OF_TEXT = "<|endoftext|>";
    /** What {@link #positionNames} calls a position after the end of the text, whatever id pads it. */
    public static final String PADDING = "<pad>";
    public static final int DEFAULT_MAX_LENGTH = 77;

    private static final String FOLDER_HINT = "a tokenizer folder holds CLIP's vocab.json and merges.txt";
    private static final String END_OF_WORD = "</w>";
    private static final int CACHE_LIMIT = 100_000;
    /** Ids index a table of tokens: past this (100 times CLIP's 49408 and more) an id is a damaged file, not a vocabulary. */
    static final int MAX_ID = (1 << 24) - 1;

    // transformers compiles this case-insensitively with Python's regex module. On lower-cased text that matters in
    // two places: the contractions ("'ſ" matches 's), which get the flag here, and U+0345, which case-insensitively
    // matches none of the classes, so Python skips it; it is excluded from the last class here too.
    private static final Pattern WORDS = Pattern.compile(
            "<\\|startoftext\\|>|<\\|endoftext\\|>|(?iu:'s|'t|'re|'ve|'m|'ll|'d)|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}\\u0345]+",
            Pattern.UNICODE_CHARACTER_CLASS);

    private static final char[] BYTE_TO_CHAR = byteToUnicode();
    private static final Map<Character, Integer> CHAR_TO_BYTE = invert(BYTE_TO_CHAR);

    private final Map<String, Integer> vocab;
    private final String[] idToToken;
    private final List<String[]> merges;
    private final Map<String, Integer> mergeRanks;
    private final int maxLength;
    private final String bosToken;
    private final String eosToken;
    private final String padToken;
    private final String unkToken;
    /** Tokens cut out of the text whole before normalisation, longest first (transformers' no-split tokens). */
    private final List<String> specialTokens;
    /** Words added as whole tokens after the vocabulary (learned concepts' placeholder words). */
    private final List<String> addedTokens;
    private final Map<String, List<String>> cache = new ConcurrentHashMap<>();

    private ClipTokenizer(Map<String, Integer> vocab, List<String[]> merges, int maxLength,
                          String bosToken, String eosToken, String padToken, String unkToken) {
        this(vocab, merges, maxLength, bosToken, eosToken, padToken, unkToken, List.of());
    }

    private ClipTokenizer(Map<String, Integer> vocab, List<String[]> merges, int maxLength,
                          String bosToken, String eosToken, String padToken, String unkToken, List<String> addedTokens) {
        if (maxLength < 2) throw new IllegalArgumentException("maxLength must be at least 2 (room for bos and eos), got " + maxLength);
        this.vocab = Collections.unmodifiableMap(new LinkedHashMap<>(vocab));
        int maxId = -1;
        for (int id : vocab.values()) {
            if (id < 0 || id > MAX_ID) throw new IllegalArgumentException("vocabulary ids must be between 0 and " + MAX_ID + ", got " + id);
            maxId = Math.max(maxId, id);
        }
        this.idToToken = new String[maxId + 1];
        for (Map.Entry<String, Integer> e : vocab.entrySet()) idToToken[e.getValue()] = e.getKey();
        List<String[]> copy = new ArrayList<>(merges.size());
        Map<String, Integer> ranks = new HashMap<>(merges.size() * 2);
        for (String[] m : merges) {
            if (m.length != 2) throw new IllegalArgumentException("a merge is a pair of symbols, got " + Arrays.toString(m));
            copy.add(new String[] {m[0], m[1]});
            ranks.put(pairKey(m[0], m[1]), copy.size() - 1); // a repeated pair takes its later rank, as a Python dict does
        }
        this.merges = Collections.unmodifiableList(copy);
        this.mergeRanks = ranks;
        this.maxLength = maxLength;
        this.bosToken = bosToken;
        this.eosToken = eosToken;
        this.padToken = padToken;
        this.unkToken = unkToken;
        for (String[] required : new String[][] {{"bos", bosToken}, {"eos", eosToken}, {"pad", padToken}, {"unk", unkToken}}) {
            if (!vocab.containsKey(required[1]))
                throw new IllegalArgumentException("the vocabulary has no " + required[0] + " token '" + required[1] + "'");
        }
        List<String> specials = new ArrayList<>();
        for (String t : List.of(bosToken, eosToken, unkToken, padToken)) if (!t.isEmpty() && !specials.contains(t)) specials.add(t);
        specials.addAll(addedTokens);
        this.addedTokens = List.copyOf(addedTokens);
        specials.sort((a, b) -> b.length() - a.length());
        this.specialTokens = List.copyOf(specials);
        cache.put(START_OF_TEXT, List.of(START_OF_TEXT));
        cache.put(END_OF_TEXT, List.of(END_OF_TEXT));
    }

    /**
     * This tokenizer with {@code words} added as single tokens, with ids after the vocabulary, matched whole in the
     * text before normalisation (as transformers' added tokens) but, like every other word of a CLIP prompt, whatever
     * its case. A word that already is one token, in any case, is refused, and so is a word with a space in it (it would
     * match across two words of a prompt, and not where the prompt spaces them twice) or the vocabulary's end-of-word mark.
     */
    public ClipTokenizer withAddedTokens(List<String> words) {
        Map<String, Integer> extended = new LinkedHashMap<>(vocab);
        List<String> added = new ArrayList<>(addedTokens);
        int next = idToToken.length;
        for (String w : words) {
            if (w.isEmpty() || w.codePoints().anyMatch(ClipTokenizer::isPythonSpace) || w.contains(END_OF_WORD)) {
                throw new IllegalArgumentException("a concept word must be one word, without spaces or '" + END_OF_WORD + "', such as 'my-dog': got '" + w + "'");
            }
            if (added.contains(w)) continue;
            for (String other : added) {
                if (other.equalsIgnoreCase(w)) throw new IllegalArgumentException("the concept words '" + other + "' and '" + w
                        + "' differ only in case, which prompts do not tell apart: give one concept another word");
            }
            String lower = pythonLower(w);
            if (vocab.containsKey(lower) || vocab.containsKey(lower + END_OF_WORD)) {
                throw new IllegalArgumentException("'" + w + "' is already a token of the vocabulary (id "
                        + vocab.getOrDefault(lower + END_OF_WORD, vocab.get(lower)) + "): choose a new word for the concept, e.g. 'my-" + lower + "'");
            }
            extended.put(w, next++);
            added.add(w);
        }
        return new ClipTokenizer(extended, merges, maxLength, bosToken, eosToken, padToken, unkToken, added);
    }

    public List<String> addedTokens() { return addedTokens; }

    /** A tokenizer over a given vocabulary and ranked merges (rank = list order), with CLIP's bos/eos/unk. */
    public static ClipTokenizer of(Map<String, Integer> vocab, List<String[]> merges, int maxLength, String padToken) {
        return new ClipTokenizer(vocab, merges, maxLength, START_OF_TEXT, END_OF_TEXT, padToken, END_OF_TEXT);
    }

    /** Reads a transformers tokenizer folder: vocab.json, merges.txt, optional tokenizer_config.json and special_tokens_map.json. */
    public static ClipTokenizer load(Path dir) throws IOException {
        return load(dir, Optional.empty());
    }

    /**
     * The tokenizer of {@code dir}'s vocabulary with {@code config}'s special tokens and length (tokenizer_config.json
     * with special_tokens_map.json over it, as a model was resolved with), or, when empty, the folder's own files'.
     */
    public static ClipTokenizer load(Path dir, Optional<JsonNode> config) throws IOException {
        if (dir == null || !Files.exists(dir))
            throw new IOException("no tokenizer: " + dir + " does not exist; " + FOLDER_HINT);
        if (!Files.isDirectory(dir))
            throw new IOException("no tokenizer: " + dir + " is a file, not a folder; " + FOLDER_HINT);
        Path vocabFile = dir.resolve("vocab.json");
        Path mergesFile = dir.resolve("merges.txt");
        for (Path f : List.of(vocabFile, mergesFile)) {
            if (!Files.isRegularFile(f))
                throw new IOException("no tokenizer: " + dir + " has no " + f.getFileName() + "; " + FOLDER_HINT);
        }
        ObjectMapper json = new ObjectMapper();
        Map<String, Integer> vocab = readVocab(json, vocabFile);
        List<String[]> merges = readMerges(mergesFile);

        int[] maxLength = {DEFAULT_MAX_LENGTH};
        Map<String, String> special = new HashMap<>(Map.of(
                "bos_token", START_OF_TEXT, "eos_token", END_OF_TEXT, "pad_token", END_OF_TEXT, "unk_token", END_OF_TEXT));
        Path configFile = dir.resolve("tokenizer_config.json");
        if (config.isPresent()) {
            readConfig(config.get(), configFile, special, maxLength);
        } else {
            if (Files.isRegularFile(configFile)) readConfig(readJsonObject(json, configFile), configFile, special, maxLength);
            // special_tokens_map.json overrides tokenizer_config.json, as in transformers' from_pretrained.
            Path mapFile = dir.resolve("special_tokens_map.json");
            if (Files.isRegularFile(mapFile)) readSpecialTokens(readJsonObject(json, mapFile), mapFile, special);
        }
        try {
            return new ClipTokenizer(vocab, merges, maxLength[0], special.get("bos_token"), special.get("eos_token"),
                    special.get("pad_token"), special.get("unk_token"));
        } catch (IllegalArgumentException e) {
            throw new IOException("bad tokenizer in " + dir + ": " + e.getMessage(), e);
        }
    }

    /** Writes vocab.json, merges.txt, tokenizer_config.json and special_tokens_map.json so that {@link #load} gives this tokenizer back. */
    public void save(Path dir) throws IOException {
        ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        Map<String, Integer> sorted = new TreeMap<>(vocab);
        AtomicFiles.write(dir.resolve("vocab.json"), json.writeValueAsBytes(sorted));
        StringBuilder sb = new StringBuilder("#version: 0.2\n");
        for (String[] m : merges) sb.append(m[0]).append(' ').append(m[1]).append('\n');
        AtomicFiles.write(dir.resolve("merges.txt"), sb.toString().getBytes(StandardCharsets.UTF_8));

        ObjectNode specials = json.createObjectNode();
        specials.set("bos_token", addedToken(json, bosToken));
        specials.set("eos_token", addedToken(json, eosToken));
        specials.put("pad_token", padToken);
        specials.set("unk_token", addedToken(json, unkToken));
        ObjectNode config = json.createObjectNode();
        config.put("tokenizer_class", "CLIPTokenizer");
        config.put("model_max_length", maxLength);
        config.put("do_lower_case", true);
        config.put("errors", "replace");
        config.put("add_prefix_space", false);
        config.put("clean_up_tokenization_spaces", true);
        config.setAll(specials);
        AtomicFiles.write(dir.resolve("tokenizer_config.json"), json.writeValueAsBytes(config));
        AtomicFiles.write(dir.resolve("special_tokens_map.json"), json.writeValueAsBytes(specials));
    }

    /** The token ids of {@code text}, without bos/eos. */
    public int[] encode(String text) {
        List<String> tokens = bpeTokens(text);
        int[] ids = new int[tokens.size()];
        for (int i = 0; i < ids.length; i++) ids[i] = idOf(tokens.get(i));
        return ids;
    }

    /** {@link #encodeForModel} of each text, as token ids [N, {@link #maxLength()}] (int64, CPU); truncation is silent. */
    public org.bytedeco.pytorch.Tensor idsForModel(List<String> texts) {
        long[] ids = new long[texts.size() * maxLength];
        for (int i = 0; i < texts.size(); i++) System.arraycopy(encodeForModel(texts.get(i)).ids(), 0, ids, i * maxLength, maxLength);
        return dev.perfusion.tensor.Ops.fromLongs(ids, texts.size(), maxLength);
    }

    /** {@code [bos, tokens..., eos, pad...]}, exactly {@link #maxLength()} long; tokens past {@code maxLength - 2} are dropped. */
    public Encoding encodeForModel(String prompt) {
        int[] tokens = encode(prompt);
        int room = maxLength - 2;
        int kept = Math.min(room, tokens.length);
        long[] ids = new long[maxLength];
        Arrays.fill(ids, padId());
        ids[0] = bosId();
        for (int i = 0; i < kept; i++) ids[1 + i] = tokens[i];
        ids[1 + kept] = eosId();
        int dropped = tokens.length - kept;
        return new Encoding(ids, dropped > 0, dropped);
    }

    /** The BPE tokens of {@code text} (strings as in vocab.json, word ends marked with {@code </w>}). */
    public List<String> bpeTokens(String text) {
        List<String> out = new ArrayList<>();
        for (String chunk : splitOnSpecialTokens(text)) {
            if (specialTokens.contains(chunk)) {
                out.add(chunk);
                continue;
            }
            Matcher m = WORDS.matcher(normalize(chunk));
            while (m.find()) out.addAll(bpe(toByteSymbols(m.group())));
        }
        return out;
    }

    /** The BPE tokens one word becomes; a single entry means the word is one token. */
    public List<String> tokensOf(String word) {
        return bpeTokens(word);
    }

    public OptionalInt tokenId(String token) {
        Integer id = vocab.get(token);
        return id == null ? OptionalInt.empty() : OptionalInt.of(id);
    }

    /** Text of ids: a leading bos is skipped and decoding stops at the first eos, so padding never shows. */
    public String decode(long[] ids) {
        int bos = bosId(), eos = eosId();
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        for (int i = 0; i < ids.length; i++) {
            long id = ids[i];
            if (i == 0 && id == bos) continue;
            if (id == eos) break;
            String token = id >= 0 && id < idToToken.length ? idToToken[(int) id] : null;
            if (token == null) token = unkToken;
            if (id >= idToToken.length - addedTokens.size()) { // an added word is its own text, not byte symbols
                bytes.writeBytes((token + END_OF_WORD).getBytes(StandardCharsets.UTF_8));
                continue;
            }
            for (int k = 0; k < token.length(); k++) {
                Integer b = CHAR_TO_BYTE.get(token.charAt(k));
                if (b != null) bytes.write(b);
                else bytes.writeBytes(String.valueOf(token.charAt(k)).getBytes(StandardCharsets.UTF_8));
            }
        }
        return new String(bytes.toByteArray(), StandardCharsets.UTF_8).replace(END_OF_WORD, " ").strip();
    }

    /** What each position of one prompt's token ids holds: BOS, a word, EOS, then {@link #PADDING}. */
    public List<String> positionNames(long[] ids) {
        List<String> out = new ArrayList<>();
        boolean ended = false;
        for (int t = 0; t < ids.length; t++) {
            out.add(ended ? PADDING : t == 0 && ids[t] == bosId() ? START_OF_TEXT
                    : ids[t] == eosId() ? END_OF_TEXT : decode(new long[] {ids[t]}));
            ended |= ids[t] == eosId();
        }
        return out;
    }

    public int bosId() {
        return vocab.get(bosToken);
    }

    public int eosId() {
        return vocab.get(eosToken);
    }

    public int padId() {
        return vocab.get(padToken);
    }

    public int vocabSize() {
        return vocab.size();
    }

    public int maxLength() {
        return maxLength;
    }

    public Map<String, Integer> vocab() {
        return vocab;
    }

    public List<String[]> merges() {
        return merges;
    }

    public String padToken() {
        return padToken;
    }

    private int idOf(String token) {
        Integer id = vocab.get(token);
        return id != null ? id : vocab.get(unkToken);
    }

    /** Cuts bos/eos/unk/pad out of the text whole, leftmost first, the longest where several start at one place. */
    private List<String> splitOnSpecialTokens(String text) {
        List<String> chunks = new ArrayList<>();
        int start = 0, i = 0;
        outer:
        while (i < text.length()) {
            for (String s : specialTokens) {
                if (addedTokens.contains(s) ? text.regionMatches(true, i, s, 0, s.length()) : text.startsWith(s, i)) {
                    if (i > start) chunks.add(text.substring(start, i));
                    chunks.add(s);
                    i += s.length();
                    start = i;
                    continue outer;
                }
            }
            i++;
        }
        if (start < text.length()) chunks.add(text.substring(start));
        return chunks;
    }

    /** Lower-cases each whitespace-separated word on its own, as BERT's tokenizer does, so final-sigma context stops at word ends. */
    private static String lowerWordByWord(String text) {
        StringBuilder out = new StringBuilder(text.length());
        int start = -1;
        for (int i = 0; i <= text.length(); ) {
            int cp = i < text.length() ? text.codePointAt(i) : ' ';
            if (isPythonSpace(cp)) {
                if (start >= 0) out.append(pythonLower(text.substring(start, i)));
                out.appendCodePoint(cp);
                start = -1;
            } else if (start < 0) {
                start = i;
            }
            i += i < text.length() ? Character.charCount(cp) : 1;
        }
        out.setLength(text.length() == 0 ? 0 : out.length() - 1); // the sentinel space
        return out.toString();
    }

    /**
     * Python's {@code str.lower()}. Java's toLowerCase differs in when a capital sigma becomes final (the two
     * disagree about which characters are cased, e.g. U+24D0 and U+0345), so sigma follows Unicode's Final_Sigma
     * rule with Python's notion of cased here.
     */
    static String pythonLower(String s) {
        StringBuilder out = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            if (cp == 0x3A3) out.append(isFinalSigma(s, i) ? '\u03C2' : '\u03C3');
            else if (cp == 0x130) out.append("i\u0307"); // the one unconditional multi-character mapping
            else out.appendCodePoint(Character.toLowerCase(cp));
            i += Character.charCount(cp);
        }
        return out.toString();
    }

    /** A cased letter before (skipping case-ignorables), and none after. */
    private static boolean isFinalSigma(String s, int at) {
        int before = -1;
        for (int j = at; j > 0; ) {
            int cp = s.codePointBefore(j);
            j -= Character.charCount(cp);
            if (!isCaseIgnorable(cp)) {
                before = cp;
                break;
            }
        }
        if (before < 0 || !isCased(before)) return false;
        for (int j = at + 1; j < s.length(); ) {
            int cp = s.codePointAt(j);
            if (!isCaseIgnorable(cp)) return !isCased(cp);
            j += Character.charCount(cp);
        }
        return true;
    }

    private static boolean isCased(int cp) {
        return Character.isLowerCase(cp) || Character.isUpperCase(cp) || Character.isTitleCase(cp)
                || Character.getType(cp) == Character.OTHER_SYMBOL && (cp >= 0x24B6 && cp <= 0x24E9); // circled letters
    }

    private static boolean isCaseIgnorable(int cp) {
        return switch (Character.getType(cp)) {
            case Character.NON_SPACING_MARK, Character.ENCLOSING_MARK, Character.FORMAT, Character.MODIFIER_LETTER,
                    Character.MODIFIER_SYMBOL -> true;
            // Word_Break MidLetter, MidNumLet and Single_Quote
            default -> switch (cp) {
                case 0x27, 0x2E, 0x3A, 0xB7, 0x387, 0x55F, 0x5F4, 0x2018, 0x2019, 0x2024, 0x2027, 0xFE13, 0xFE52, 0xFE55,
                        0xFF07, 0xFF0E, 0xFF1A -> true;
                default -> false;
            };
        };
    }

    /**
     * BERT's basic tokenizer as CLIP's slow tokenizer configures it without ftfy: drop NUL, U+FFFD and control
     * characters, turn whitespace into spaces, isolate CJK ideographs, NFC, lower-case, collapse whitespace.
     */
    static String normalize(String text) {
        StringBuilder cleaned = new StringBuilder(text.length() + 16);
        text.codePoints().forEach(cp -> {
            if (cp == 0 || cp == 0xFFFD || isControl(cp)) return;
            if (isBertWhitespace(cp)) cleaned.append(' ');
            else if (isCjkIdeograph(cp)) cleaned.append(' ').appendCodePoint(cp).append(' ');
            else cleaned.appendCodePoint(cp);
        });
        String lowered = lowerWordByWord(Normalizer.normalize(cleaned, Normalizer.Form.NFC));
        StringBuilder out = new StringBuilder(lowered.length());
        boolean pendingSpace = false;
        for (int i = 0; i < lowered.length(); ) {
            int cp = lowered.codePointAt(i);
            i += Character.charCount(cp);
            if (isPythonSpace(cp)) {
                pendingSpace = out.length() > 0;
                continue;
            }
            if (pendingSpace) out.append(' ');
            pendingSpace = false;
            out.appendCodePoint(cp);
        }
        return out.toString();
    }

    private static boolean isBertWhitespace(int cp) {
        return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || Character.getType(cp) == Character.SPACE_SEPARATOR;
    }

    private static boolean isControl(int cp) {
        if (cp == '\t' || cp == '\n' || cp == '\r') return false;
        int type = Character.getType(cp);
        return type == Character.CONTROL || type == Character.FORMAT;
    }

    /** What Python's str.split() splits on. */
    private static boolean isPythonSpace(int cp) {
        if ((cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85) return true;
        int type = Character.getType(cp);
        return type == Character.SPACE_SEPARATOR || type == Character.LINE_SEPARATOR || type == Character.PARAGRAPH_SEPARATOR;
    }

    private static boolean isCjkIdeograph(int cp) {
        return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF)
                || (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF)
                || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
    }

    private static String toByteSymbols(String word) {
        byte[] utf8 = word.getBytes(StandardCharsets.UTF_8);
        char[] chars = new char[utf8.length];
        for (int i = 0; i < utf8.length; i++) chars[i] = BYTE_TO_CHAR[utf8[i] & 0xFF];
        return new String(chars);
    }

    /** Merges the word's symbols pair by pair, always the lowest-ranked pair present, all its occurrences at once. */
    private List<String> bpe(String word) {
        List<String> cached = cache.get(word);
        if (cached != null) return cached;
        List<String> symbols = new ArrayList<>(word.length());
        for (int i = 0; i < word.length(); i++) symbols.add(String.valueOf(word.charAt(i)));
        int last = symbols.size() - 1;
        symbols.set(last, symbols.get(last) + END_OF_WORD);
        while (symbols.size() > 1) {
            int bestRank = Integer.MAX_VALUE;
            String first = null, second = null;
            for (int i = 0; i + 1 < symbols.size(); i++) {
                Integer rank = mergeRanks.get(pairKey(symbols.get(i), symbols.get(i + 1)));
                if (rank != null && rank < bestRank) {
                    bestRank = rank;
                    first = symbols.get(i);
                    second = symbols.get(i + 1);
                }
            }
            if (first == null) break;
            List<String> merged = new ArrayList<>(symbols.size());
            for (int i = 0; i < symbols.size(); ) {
                if (i + 1 < symbols.size() && symbols.get(i).equals(first) && symbols.get(i + 1).equals(second)) {
                    merged.add(first + second);
                    i += 2;
                } else {
                    merged.add(symbols.get(i));
                    i++;
                }
            }
            symbols = merged;
        }
        List<String> result = List.copyOf(symbols);
        if (cache.size() > CACHE_LIMIT) cache.clear();
        cache.put(word, result);
        return result;
    }

    private static String pairKey(String first, String second) {
        return first + '\u0000' + second;
    }

    /** The 256 byte symbols in the order CLIP's vocabulary lists them: printable bytes first, then the rest. */
    public static List<String> byteSymbols() {
        List<String> printable = new ArrayList<>(), rest = new ArrayList<>();
        for (int b = 0; b < 256; b++) {
            String symbol = Character.toString(BYTE_TO_CHAR[b]);
            if (BYTE_TO_CHAR[b] == (char) b) printable.add(symbol); else rest.add(symbol);
        }
        printable.addAll(rest);
        return printable;
    }

    /** A word's symbols before any merge: its UTF-8 bytes as byte symbols, the last one marked {@code </w>}. */
    public static List<String> initialSymbols(String word) {
        byte[] utf8 = word.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        List<String> out = new ArrayList<>();
        for (int i = 0; i < utf8.length; i++) {
            String s = Character.toString(BYTE_TO_CHAR[utf8[i] & 0xFF]);
            out.add(i == utf8.length - 1 ? s + "</w>" : s);
        }
        return out;
    }

    /** GPT-2's reversible byte→character map: printable Latin-1 bytes stand for themselves, the rest move to U+0100 upwards. */
    private static char[] byteToUnicode() {
        char[] map = new char[256];
        int next = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char) b : (char) (256 + next++);
        }
        return map;
    }

    private static Map<Character, Integer> invert(char[] map) {
        Map<Character, Integer> inverse = new HashMap<>();
        for (int b = 0; b < map.length; b++) inverse.put(map[b], b);
        return inverse;
    }

    private static Map<String, Integer> readVocab(ObjectMapper json, Path file) throws IOException {
        JsonNode root = readJsonObject(json, file);
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().isIntegralNumber() || !e.getValue().canConvertToInt() || e.getValue().asInt() < 0 || e.getValue().asInt() > MAX_ID)
                throw new IOException(file + " is not a CLIP vocabulary: token " + quote(e.getKey())
                        + " maps to " + e.getValue() + ", expected an integer id from 0 to " + MAX_ID);
            vocab.put(e.getKey(), e.getValue().asInt());
        }
        if (vocab.isEmpty()) throw new IOException(file + " is not a CLIP vocabulary: it holds no tokens");
        return vocab;
    }

    private static List<String[]> readMerges(Path file) throws IOException {
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new IOException(file + " is not UTF-8 text (as transformers reads merges.txt): " + e, e);
        }
        List<String[]> merges = new ArrayList<>(lines.size());
        for (int n = 0; n < lines.size(); n++) {
            String line = lines.get(n);
            if (n == 0 && line.startsWith("#version")) continue;
            if (line.isBlank()) continue;
            String[] pair = line.strip().split(" ");
            if (pair.length != 2 || pair[0].isEmpty() || pair[1].isEmpty())
                throw new IOException(file + " line " + (n + 1) + ": expected two symbols separated by one space, got "
                        + quote(line));
            merges.add(pair);
        }
        return merges;
    }

    private static JsonNode readJsonObject(ObjectMapper json, Path file) throws IOException {
        JsonNode root;
        try {
            root = json.readTree(file.toFile());
        } catch (JsonProcessingException e) {
            throw new IOException(file + " is not valid JSON: " + e.getOriginalMessage(), e);
        } catch (java.io.CharConversionException e) { // bytes in no Unicode encoding Jackson detects
            throw new IOException(file + " is not valid JSON: " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) throw new IOException(file + " must hold a JSON object");
        return root;
    }

    /** A tokenizer config's length (into {@code maxLength[0]}) and special tokens; {@code file} names it in errors. */
    private static void readConfig(JsonNode config, Path file, Map<String, String> special, int[] maxLength) throws IOException {
        JsonNode m = config.get("model_max_length");
        // transformers writes 1e30 when no length is known; CLIP's position table is what bounds it then.
        if (m != null && m.isNumber() && m.asDouble() >= 2 && m.asDouble() <= 1_000_000) maxLength[0] = m.asInt();
        else if (m != null && !m.isNull() && !(m.isNumber() && m.asDouble() > 1_000_000))
            throw new IOException(file + ": model_max_length must be a number of at least 2, got " + m);
        readSpecialTokens(config, file, special);
    }

    private static void readSpecialTokens(JsonNode node, Path file, Map<String, String> into) throws IOException {
        for (String key : List.of("bos_token", "eos_token", "pad_token", "unk_token")) {
            JsonNode v = node.get(key);
            if (v == null || v.isNull()) continue;
            if (v.isTextual()) into.put(key, v.asText());
            else if (v.isObject() && v.path("content").isTextual()) into.put(key, v.get("content").asText());
            else throw new IOException(file + ": " + key + " must be a string or an object with \"content\", got " + v);
        }
    }

    private static ObjectNode addedToken(ObjectMapper json, String content) {
        ObjectNode n = json.createObjectNode();
        n.put("content", content);
        n.put("lstrip", false);
        n.put("normalized", true);
        n.put("rstrip", false);
        n.put("single_word", false);
        return n;
    }

    private static String quote(String s) {
        return "'" + (s.length() > 60 ? s.substring(0, 60) + "..." : s) + "'";
    }
}
