package dev.perfusion.io.pickle;

import java.math.BigInteger;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A restricted pickle machine (protocols 0-5, opcodes as CPython's pickletools documents them) that builds data and
 * never runs anything: strings, numbers, tuples, lists, dicts and sets are built as {@link Py} describes; a global is
 * admitted only when {@link Globals} lists it, and "calling" one (REDUCE) is that table's Java decoder; persistent
 * ids (how torch.save refers to storages) go to the container. Opcodes that instantiate classes (INST, OBJ, NEWOBJ,
 * NEWOBJ_EX), extension codes and out-of-band buffers are refused by name, as is any global not on the list.
 * <p>
 * Memory is bounded by the input: every declared length is checked against the bytes left, strings and ints are
 * capped, and so is the number of opcodes; nesting is bounded where Java would recurse (tuples, used as keys). Work
 * that one opcode can multiply through the memo is bounded too: the values a call copies (REDUCE of set or
 * OrderedDict on a memoized list) and those hashing a key visits (a tuple of a memoized tuple, repeated) count
 * against {@link #MAX_WORK}.
 */
public final class Unpickler {
    /** Longest string or bytes value (names of tensors are short). */
    static final long MAX_STRING = 16L << 20;
    /** Most opcodes one pickle may run (an SD checkpoint's runs about 100 thousand). */
    static final long MAX_OPCODES = 20_000_000L;
    /** Most values all calls may copy and all hashing of keys may visit (a checkpoint's need a few per tensor). */
    static final long MAX_WORK = 20_000_000L;
    /** Longest int (LONG4) in bytes: a checkpoint's are 64-bit, and printing a huge one takes minutes. */
    static final int MAX_INT_BYTES = 1024;
    private static final int MAX_LINE = 4096;

    /** The container's meaning of a persistent id (for torch: a storage). */
    @FunctionalInterface
    public interface PersistentLoad {
        Object load(Object pid) throws PickleException;
    }

    private final PickleInput in;
    private final PersistentLoad persistent;
    private final List<Object> stack = new ArrayList<>();
    /** Stack heights at each open MARK. */
    private final List<Integer> marks = new ArrayList<>();
    private final Map<Long, Object> memo = new HashMap<>();
    private long opcodeAt;
    /** Values copied by calls and visited by hashing so far ({@link #MAX_WORK}). */
    private long work;

    private Unpickler(PickleInput in, PersistentLoad persistent) {
        this.in = in;
        this.persistent = persistent;
    }

    /** Runs one pickle from the input's position to its STOP and returns what it built. */
    static Object load(PickleInput in, PersistentLoad persistent) throws PickleException {
        return new Unpickler(in, persistent).run();
    }

    /** One pickle from {@code bytes}, for tests and fuzzing; {@code where} names it in messages. */
    public static Object load(byte[] bytes, String where, PersistentLoad persistent) throws PickleException {
        return load(new PickleInput(java.nio.ByteBuffer.wrap(bytes), 0, where, false), persistent);
    }

    private PickleException error(String message) {
        return new PickleException(in.where() + ": " + message + " (at byte " + opcodeAt + ")");
    }

    private Object run() throws PickleException {
        long count = 0;
        while (true) {
            opcodeAt = in.position();
            int op = in.u8("an opcode");
            if (++count > MAX_OPCODES) throw error("more than " + MAX_OPCODES + " opcodes: not a checkpoint's pickle");
            switch (op) {
                case 0x80 -> { // PROTO
                    int protocol = in.u8("PROTO");
                    if (protocol > 5) throw error("pickle protocol " + protocol + " (this reader knows 0 to 5)");
                }
                case 0x95 -> { // FRAME: a length prefix for buffering; the data follows as usual
                    long n = in.i64("FRAME");
                    if (n < 0 || n > in.remaining()) throw error("a FRAME of " + n + " bytes runs past the end");
                }
                case '.' -> { // STOP
                    if (stack.isEmpty()) throw error("STOP with nothing built");
                    return pop();
                }
                case '(' -> marks.add(stack.size()); // MARK
                case '0' -> pop(); // POP
                case '1' -> popMark(); // POP_MARK
                case '2' -> push(peek()); // DUP
                case 'N' -> push(Py.None.NONE);
                case 0x88 -> push(Boolean.TRUE); // NEWTRUE
                case 0x89 -> push(Boolean.FALSE); // NEWFALSE
                case 'K' -> push((long) in.u8("BININT1"));
                case 'M' -> push((long) in.u16("BININT2"));
                case 'J' -> push((long) in.i32("BININT"));
                case 0x8a -> push(longOf(in.u8("LONG1"))); // LONG1
                case 0x8b -> { // LONG4
                    long n = in.i32("LONG4");
                    if (n > MAX_INT_BYTES) {
                        throw error("LONG4 declares an int of " + n + " bytes (more than the " + MAX_INT_BYTES
                                + " a checkpoint's numbers need)");
                    }
                    push(longOf(n));
                }
                case 'G' -> push(in.f64BigEndian("BINFLOAT"));
                case 'I' -> push(textInt(in.line(MAX_LINE, "INT")));
                case 'L' -> push(textLong(in.line(MAX_LINE, "LONG")));
                case 'F' -> push(textFloat(in.line(MAX_LINE, "FLOAT")));
                case 'X' -> push(utf8(in.u32("BINUNICODE"), "BINUNICODE"));
                case 0x8c -> push(utf8(in.u8("SHORT_BINUNICODE"), "SHORT_BINUNICODE"));
                case 0x8d -> push(utf8(in.i64("BINUNICODE8"), "BINUNICODE8"));
                // Python 2 str: bytes, read as latin-1 text, as torch.load(encoding='latin1') does
                case 'T' -> push(latin1(in.i32("BINSTRING"), "BINSTRING"));
                case 'U' -> push(latin1(in.u8("SHORT_BINSTRING"), "SHORT_BINSTRING"));
                case 'B' -> push(new Py.Bytes(string(in.u32("BINBYTES"), "BINBYTES")));
                case 'C' -> push(new Py.Bytes(string(in.u8("SHORT_BINBYTES"), "SHORT_BINBYTES")));
                case 0x8e -> push(new Py.Bytes(string(in.i64("BINBYTES8"), "BINBYTES8")));
                case 0x96 -> push(new Py.Bytes(string(in.i64("BYTEARRAY8"), "BYTEARRAY8")));
                case ')' -> push(tuple(List.of())); // EMPTY_TUPLE
                case 0x85 -> push(tuple(popN(1))); // TUPLE1
                case 0x86 -> push(tuple(popN(2))); // TUPLE2
                case 0x87 -> push(tuple(popN(3))); // TUPLE3
                case 't' -> push(tuple(popMark())); // TUPLE
                case ']' -> push(new ArrayList<>()); // EMPTY_LIST
                case 'l' -> push(new ArrayList<>(popMark())); // LIST
                case 'a' -> { // APPEND
                    Object v = pop();
                    list("APPEND").add(v);
                }
                case 'e' -> { // APPENDS
                    List<Object> items = popMark();
                    list("APPENDS").addAll(items);
                }
                case '}' -> push(new LinkedHashMap<>()); // EMPTY_DICT
                case 'd' -> { // DICT
                    List<Object> items = popMark();
                    Map<Object, Object> dict = new LinkedHashMap<>();
                    putPairs(dict, items, "DICT");
                    push(dict);
                }
                case 's' -> { // SETITEM
                    Object v = pop(), k = pop();
                    putPairs(dict("SETITEM"), List.of(k, v), "SETITEM");
                }
                case 'u' -> { // SETITEMS
                    List<Object> items = popMark();
                    putPairs(dict("SETITEMS"), items, "SETITEMS");
                }
                case 0x8f -> push(new LinkedHashSet<>()); // EMPTY_SET
                case 0x90 -> { // ADDITEMS
                    List<Object> items = popMark();
                    if (!(peek() instanceof Set<?>)) throw error("ADDITEMS onto " + Py.describe(peek()) + ", not a set");
                    @SuppressWarnings("unchecked") Set<Object> set = (Set<Object>) peek();
                    for (Object o : items) set.add(hashable(o, "a set member"));
                }
                case 0x91 -> { // FROZENSET
                    Set<Object> items = new LinkedHashSet<>();
                    for (Object o : popMark()) items.add(hashable(o, "a frozenset member"));
                    int depth = 1 + items.stream().mapToInt(Py::depthOf).max().orElse(0);
                    push(new Py.FrozenSet(Collections.unmodifiableSet(items), checkDepth(depth)));
                }
                case 'p' -> memo.put(textIndex(in.line(MAX_LINE, "PUT")), peek()); // PUT
                case 'q' -> memo.put((long) in.u8("BINPUT"), peek()); // BINPUT
                case 'r' -> memo.put(in.u32("LONG_BINPUT"), peek()); // LONG_BINPUT
                case 0x94 -> memo.put((long) memo.size(), peek()); // MEMOIZE
                case 'g' -> push(memo(textIndex(in.line(MAX_LINE, "GET")))); // GET
                case 'h' -> push(memo(in.u8("BINGET"))); // BINGET
                case 'j' -> push(memo(in.u32("LONG_BINGET"))); // LONG_BINGET
                case 'c' -> { // GLOBAL
                    String module = in.line(MAX_LINE, "GLOBAL");
                    String name = in.line(MAX_LINE, "GLOBAL");
                    push(global(module, name, "GLOBAL"));
                }
                case 0x93 -> { // STACK_GLOBAL
                    Object name = pop(), module = pop();
                    if (!(module instanceof String m) || !(name instanceof String n)) {
                        throw error("STACK_GLOBAL needs a module and a name as strings, got " + Py.describe(module)
                                + " and " + Py.describe(name));
                    }
                    push(global(m, n, "STACK_GLOBAL"));
                }
                case 'R' -> { // REDUCE: callable(*args), for the allow-list's decoders only
                    Object args = pop(), callable = pop();
                    if (!(callable instanceof Py.Name name)) throw error("REDUCE calls " + Py.describe(callable) + ", not a global");
                    if (!(args instanceof Py.Tuple t)) throw error("REDUCE of " + name + " with " + Py.describe(args) + ", not a tuple");
                    charge(cost(t), "calls of " + name);
                    try {
                        push(Globals.call(name, t));
                    } catch (Globals.Refused e) {
                        throw error(e.getMessage());
                    }
                }
                case 'b' -> { // BUILD
                    Object state = pop(), target = pop();
                    try {
                        push(Globals.build(target, state));
                    } catch (Globals.Refused e) {
                        throw error(e.getMessage());
                    }
                }
                case 'Q' -> push(persistent.load(pop())); // BINPERSID
                case 'P' -> throw error("opcode PERSID (a text persistent id): torch.save writes BINPERSID; not a torch checkpoint");
                case 'i' -> throw refusedOpcode("INST", "instantiates a class");
                case 'o' -> throw refusedOpcode("OBJ", "instantiates a class");
                case 0x81 -> throw refusedOpcode("NEWOBJ", "instantiates a class");
                case 0x92 -> throw refusedOpcode("NEWOBJ_EX", "instantiates a class");
                case 0x82, 0x83, 0x84 -> throw refusedOpcode("EXT" + (op == 0x82 ? 1 : op == 0x83 ? 2 : 4),
                        "names a global through the extension registry");
                case 0x97, 0x98 -> throw refusedOpcode(op == 0x97 ? "NEXT_BUFFER" : "READONLY_BUFFER",
                        "refers to an out-of-band buffer");
                case 'S', 'V' -> throw error("opcode " + (op == 'S' ? "STRING" : "UNICODE") + " (protocol 0 text strings) is"
                        + " not supported: torch.save writes protocol 2 or later");
                default -> throw error(String.format("unknown opcode 0x%02x: not a pickle, or a corrupt one", op));
            }
        }
    }

    /** Counts {@code units} of work against {@link #MAX_WORK}; {@code what} names what would have done it. */
    private void charge(long units, String what) throws PickleException {
        work = Math.min(Long.MAX_VALUE / 2, work + units);
        if (work > MAX_WORK) {
            throw error(what + " would copy or hash more than " + MAX_WORK + " values (repeating memoized"
                    + " values): not a checkpoint's pickle");
        }
    }

    /**
     * What a call copies and hashes: its arguments (a string's every character), and the items of a list, set or dict
     * among them, with the items of lists in a list (OrderedDict's [key, value] pairs, as Python 2 wrote them).
     */
    private static long cost(Py.Tuple args) {
        long units = args.nodes();
        for (Object a : args.items()) {
            if (a instanceof Collection<?> c) {
                for (Object o : c) {
                    units = Math.min(Long.MAX_VALUE / 4, units + Py.weight(o));
                    if (o instanceof List<?> pair) {
                        for (Object x : pair) {
                            units = Math.min(Long.MAX_VALUE / 4, units + Py.weight(x));
                            if (units > MAX_WORK) return units; // each step counts at least 1: the loops stay bounded
                        }
                    }
                    if (units > MAX_WORK) return units;
                }
            } else if (a instanceof String text) {
                units = Math.min(Long.MAX_VALUE / 4, units + text.length()); // _codecs.encode copies it: a memoized string repeated
            } else if (a instanceof Map<?, ?> m) {
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    units = Math.min(Long.MAX_VALUE / 4, units + Py.weight(e.getKey()) + Py.weight(e.getValue()));
                    if (units > MAX_WORK) return units;
                }
            }
        }
        return units;
    }

    private PickleException refusedOpcode(String name, String what) {
        return error("opcode " + name + " " + what + ", which a checkpoint never needs; refused (nothing was run)");
    }

    private Py.Name global(String module, String name, String opcode) throws PickleException {
        return Globals.lookup(module, name).orElseThrow(() -> error("the pickle refers to the global '"
                + Globals.printable(module) + "." + Globals.printable(name) + "' (opcode " + opcode
                + "), which is not allowed: a checkpoint may name only tensors' and storages' rebuild functions and"
                + " plain containers; refused (nothing was run)"));
    }

    private void push(Object o) { stack.add(o); }

    private Object pop() throws PickleException {
        int floor = marks.isEmpty() ? 0 : marks.get(marks.size() - 1);
        if (stack.size() <= floor) throw error("the stack is empty" + (marks.isEmpty() ? "" : " above the MARK"));
        return stack.remove(stack.size() - 1);
    }

    private Object peek() throws PickleException {
        int floor = marks.isEmpty() ? 0 : marks.get(marks.size() - 1);
        if (stack.size() <= floor) throw error("the stack is empty" + (marks.isEmpty() ? "" : " above the MARK"));
        return stack.get(stack.size() - 1);
    }

    /** The top {@code n} items, oldest first. */
    private List<Object> popN(int n) throws PickleException {
        int floor = marks.isEmpty() ? 0 : marks.get(marks.size() - 1);
        if (stack.size() - n < floor) throw error("the stack holds fewer than " + n + " items");
        List<Object> top = new ArrayList<>(stack.subList(stack.size() - n, stack.size()));
        stack.subList(stack.size() - n, stack.size()).clear();
        return top;
    }

    /** The items above the last MARK, oldest first, and the MARK removed. */
    private List<Object> popMark() throws PickleException {
        if (marks.isEmpty()) throw error("no MARK to pop to");
        int at = marks.remove(marks.size() - 1);
        List<Object> top = new ArrayList<>(stack.subList(at, stack.size()));
        stack.subList(at, stack.size()).clear();
        return top;
    }

    private Object memo(long index) throws PickleException {
        Object o = memo.get(index);
        if (o == null) throw error("memo entry " + index + " is read before it was written");
        return o;
    }

    private Py.Tuple tuple(List<Object> items) throws PickleException {
        int depth = 1 + items.stream().mapToInt(Py::depthOf).max().orElse(0);
        return new Py.Tuple(Collections.unmodifiableList(items), checkDepth(depth));
    }

    private int checkDepth(int depth) throws PickleException {
        if (depth > Py.MAX_DEPTH) throw error("tuples nested more than " + Py.MAX_DEPTH + " deep: not a checkpoint");
        return depth;
    }

    @SuppressWarnings("unchecked")
    private List<Object> list(String opcode) throws PickleException {
        Object top = peek();
        if (!(top instanceof ArrayList<?>)) throw error(opcode + " onto " + Py.describe(top) + ", not a list");
        return (List<Object>) top;
    }

    @SuppressWarnings("unchecked")
    private Map<Object, Object> dict(String opcode) throws PickleException {
        Object top = peek();
        if (!(top instanceof LinkedHashMap<?, ?>)) throw error(opcode + " onto " + Py.describe(top) + ", not a dict");
        return (Map<Object, Object>) top;
    }

    private void putPairs(Map<Object, Object> dict, List<Object> items, String opcode) throws PickleException {
        if (items.size() % 2 != 0) throw error(opcode + " with an odd number of items (" + items.size() + ")");
        for (int i = 0; i < items.size(); i += 2) dict.put(hashable(items.get(i), "a dict key"), items.get(i + 1));
    }

    private Object hashable(Object o, String what) throws PickleException {
        charge(Py.weight(o), "hashing " + what);
        if (!Py.hashable(o)) throw error(what + " is " + Py.describe(o) + ", which is unhashable");
        return o;
    }

    private byte[] string(long n, String opcode) throws PickleException {
        if (n < 0 || n > MAX_STRING) {
            throw error(opcode + " declares " + n + " bytes (more than the " + MAX_STRING + " a checkpoint's strings need)");
        }
        return in.bytes(n, opcode);
    }

    private String utf8(long n, String opcode) throws PickleException {
        byte[] b = string(n, opcode);
        try {
            // surrogatepass as Python writes lone surrogates: replaced here; names with them are not tensors' names
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPLACE)
                    .onUnmappableCharacter(CodingErrorAction.REPLACE).decode(java.nio.ByteBuffer.wrap(b)).toString();
        } catch (CharacterCodingException e) {
            throw error(opcode + " is not UTF-8");
        }
    }

    private String latin1(long n, String opcode) throws PickleException {
        return new String(string(n, opcode), StandardCharsets.ISO_8859_1);
    }

    /** A little-endian two's-complement integer of {@code n} bytes (LONG1, LONG4). */
    private Object longOf(long n) throws PickleException {
        byte[] le = string(n, "LONG");
        if (le.length == 0) return 0L;
        byte[] be = new byte[le.length];
        for (int i = 0; i < le.length; i++) be[i] = le[le.length - 1 - i];
        BigInteger v = new BigInteger(be);
        return v.bitLength() < 64 ? (Object) v.longValue() : v;
    }

    private Object textInt(String line) throws PickleException {
        if (line.equals("00")) return Boolean.FALSE;
        if (line.equals("01")) return Boolean.TRUE;
        return textLong(line);
    }

    private Object textLong(String line) throws PickleException {
        String digits = line.endsWith("L") ? line.substring(0, line.length() - 1) : line;
        try {
            BigInteger v = new BigInteger(digits);
            return v.bitLength() < 64 ? (Object) v.longValue() : v;
        } catch (NumberFormatException e) {
            throw error("an integer opcode holds '" + Globals.printable(line) + "', not a number");
        }
    }

    private double textFloat(String line) throws PickleException {
        try {
            return Double.parseDouble(line);
        } catch (NumberFormatException e) {
            throw error("FLOAT holds '" + Globals.printable(line) + "', not a number");
        }
    }

    private long textIndex(String line) throws PickleException {
        try {
            return Long.parseLong(line);
        } catch (NumberFormatException e) {
            throw error("a memo index '" + Globals.printable(line) + "' is not a number");
        }
    }
}
