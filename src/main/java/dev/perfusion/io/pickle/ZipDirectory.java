package dev.perfusion.io.pickle;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The central directory of a zip archive (with zip64 extensions, as torch.save writes files over 4 GB), read
 * without decompressing anything: each entry's name, method, sizes and where its data starts (from its local
 * header). Every offset and size is checked to lie inside the file, before the central directory.
 */
final class ZipDirectory {
    static final int STORED = 0;
    static final int DEFLATED = 8;

    private static final int EOCD = 0x06054b50;
    private static final int EOCD64 = 0x06064b50;
    private static final int EOCD64_LOCATOR = 0x07064b50;
    private static final int CENTRAL = 0x02014b50;
    private static final int LOCAL = 0x04034b50;
    private static final int MAX_ENTRIES = 1_000_000;
    private static final long MAX_DIRECTORY = 256L << 20;

    /** One member: its data lies at {@code [dataOffset, dataOffset + compressedSize)} in the file. */
    record Entry(String name, int method, long compressedSize, long size, long dataOffset) {}

    private ZipDirectory() {}

    /** Whether {@code head} starts like a zip archive (a local file header). */
    static boolean isZip(byte[] head, int n) {
        return n >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4;
    }

    /** The entries by name, in the central directory's order. */
    static Map<String, Entry> read(FileChannel ch, Path file) throws IOException {
        long size = ch.size();
        String where = file + ": zip archive";
        // the end-of-central-directory record is in the last 22 + 65535 (comment) bytes
        int tailLength = (int) Math.min(size, 22 + 65535);
        ByteBuffer tail = readAt(ch, size - tailLength, tailLength, where);
        int eocd = -1;
        for (int i = tailLength - 22; i >= 0; i--) {
            if (tail.getInt(i) == EOCD) {
                eocd = i;
                break;
            }
        }
        if (eocd < 0) throw new PickleException(where + ": no end of central directory (truncated or not a zip file)");
        long entries = tail.getShort(eocd + 10) & 0xffff;
        long directorySize = tail.getInt(eocd + 12) & 0xffffffffL;
        long directoryOffset = tail.getInt(eocd + 16) & 0xffffffffL;
        long eocdOffset = size - tailLength + eocd;
        if (entries == 0xffff || directorySize == 0xffffffffL || directoryOffset == 0xffffffffL) {
            // zip64: a locator just before the record points at the zip64 end of central directory
            if (eocdOffset < 20) throw new PickleException(where + ": zip64 sizes without a zip64 locator");
            ByteBuffer locator = readAt(ch, eocdOffset - 20, 20, where);
            if (locator.getInt(0) != EOCD64_LOCATOR) throw new PickleException(where + ": zip64 sizes without a zip64 locator");
            long at = locator.getLong(8);
            if (at < 0 || at > eocdOffset - 20 - 56) throw new PickleException(where + ": zip64 record offset " + at + " is outside the file");
            ByteBuffer e64 = readAt(ch, at, 56, where);
            if (e64.getInt(0) != EOCD64) throw new PickleException(where + ": no zip64 end of central directory at " + at);
            entries = e64.getLong(32);
            directorySize = e64.getLong(40);
            directoryOffset = e64.getLong(48);
        }
        if (directoryOffset < 0 || directorySize < 0 || directoryOffset > eocdOffset || directorySize > eocdOffset - directoryOffset) {
            throw new PickleException(where + ": the central directory (" + directorySize + " bytes at " + directoryOffset
                    + ") lies outside the file of " + size + " bytes (truncated?)");
        }
        if (directorySize > MAX_DIRECTORY || entries > MAX_ENTRIES || entries < 0 || entries * 46 > directorySize) {
            throw new PickleException(where + ": a central directory of " + entries + " entries in " + directorySize
                    + " bytes is corrupt or beyond what a checkpoint holds");
        }
        ByteBuffer dir = readAt(ch, directoryOffset, (int) directorySize, where);
        Map<String, Entry> out = new LinkedHashMap<>();
        int p = 0;
        for (long i = 0; i < entries; i++) {
            if (p + 46 > dir.limit() || dir.getInt(p) != CENTRAL) {
                throw new PickleException(where + ": central directory entry " + i + " is corrupt (at byte " + (directoryOffset + p) + ")");
            }
            int flags = dir.getShort(p + 8) & 0xffff;
            int method = dir.getShort(p + 10) & 0xffff;
            long compressed = dir.getInt(p + 20) & 0xffffffffL;
            long uncompressed = dir.getInt(p + 24) & 0xffffffffL;
            int nameLength = dir.getShort(p + 28) & 0xffff;
            int extraLength = dir.getShort(p + 30) & 0xffff;
            int commentLength = dir.getShort(p + 32) & 0xffff;
            long localOffset = dir.getInt(p + 42) & 0xffffffffL;
            if (p + 46L + nameLength + extraLength + commentLength > dir.limit()) {
                throw new PickleException(where + ": central directory entry " + i + " runs past the directory");
            }
            byte[] nameBytes = new byte[nameLength];
            dir.get(p + 46, nameBytes);
            String name = new String(nameBytes, (flags & 0x800) != 0 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
            // zip64 extra field: 8-byte values for those of the three that are 0xffffffff, in this order
            int e = p + 46 + nameLength, end = e + extraLength;
            while (e + 4 <= end) {
                int id = dir.getShort(e) & 0xffff, length = dir.getShort(e + 2) & 0xffff;
                if (e + 4 + length > end) break;
                if (id == 0x0001) {
                    int v = e + 4;
                    if (uncompressed == 0xffffffffL && v + 8 <= e + 4 + length) { uncompressed = dir.getLong(v); v += 8; }
                    if (compressed == 0xffffffffL && v + 8 <= e + 4 + length) { compressed = dir.getLong(v); v += 8; }
                    if (localOffset == 0xffffffffL && v + 8 <= e + 4 + length) localOffset = dir.getLong(v);
                }
                e += 4 + length;
            }
            p += 46 + nameLength + extraLength + commentLength;
            String member = where + " member '" + Globals.printable(name) + "'";
            if ((flags & 1) != 0) throw new PickleException(member + " is encrypted");
            if (compressed < 0 || uncompressed < 0 || localOffset < 0 || localOffset > directoryOffset - 30) {
                throw new PickleException(member + ": its local header offset " + localOffset + " or sizes are outside the file");
            }
            ByteBuffer local = readAt(ch, localOffset, 30, member);
            if (local.getInt(0) != LOCAL) throw new PickleException(member + ": no local header at byte " + localOffset);
            long dataOffset = localOffset + 30 + (local.getShort(26) & 0xffff) + (local.getShort(28) & 0xffff);
            if (compressed > directoryOffset - dataOffset) {
                throw new PickleException(member + ": its " + compressed + " bytes of data at byte " + dataOffset
                        + " run past the end of the archive's data (" + directoryOffset + " bytes; truncated?)");
            }
            if (method == STORED && compressed != uncompressed) {
                throw new PickleException(member + " is stored but its sizes differ (" + compressed + " and " + uncompressed + ")");
            }
            if (out.put(name, new Entry(name, method, compressed, uncompressed, dataOffset)) != null) {
                throw new PickleException(member + " appears twice");
            }
        }
        return out;
    }

    private static ByteBuffer readAt(FileChannel ch, long offset, int length, String where) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
        while (b.hasRemaining()) {
            if (ch.read(b, offset + b.position()) < 0) throw new PickleException(where + ": truncated at byte " + (offset + b.position()));
        }
        return b.flip();
    }
}
