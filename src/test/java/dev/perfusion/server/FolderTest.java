package dev.perfusion.server;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** A client's name becomes a path only inside its folder. */
class FolderTest {
    @TempDir Path tmp;

    @Test
    void plainNamesResolveInsideTheFolder() throws IOException {
        Folder f = new Folder(tmp.resolve("library"));
        assertEquals(f.root().resolve("my-cat.safetensors"), f.resolve("my-cat.safetensors"));
        assertEquals(f.root().resolve("20261202-1/samples/step-00001.png"), f.resolve("20261202-1", "samples", "step-00001.png"));
    }

    @Test
    void namesThatCouldLeaveAreRefused() throws IOException {
        Folder f = new Folder(tmp.resolve("library"));
        for (String bad : new String[] {"..", "../x", "a/../../x", "/etc/passwd", "a/b", "a\\b", ".hidden", "", "x..y", "C:x", "a b",
                "x".repeat(129), "name\u0000.png", "caf\u00e9"}) {
            ApiException e = assertThrows(ApiException.class, () -> f.resolve(bad), bad);
            assertEquals(400, e.status, bad);
        }
    }

    @Test
    void aLinkOutOfTheFolderIsRefusedAndOneInsideIsFollowed() throws IOException {
        Folder f = new Folder(tmp.resolve("library"));
        Path secret = Files.writeString(tmp.resolve("secret.txt"), "secret");
        Files.createSymbolicLink(f.root().resolve("out.png"), secret);
        Files.createSymbolicLink(f.root().resolve("outdir"), tmp);
        Files.writeString(f.root().resolve("inside.png"), "x");
        Files.createSymbolicLink(f.root().resolve("alias.png"), f.root().resolve("inside.png"));
        assertEquals(400, assertThrows(ApiException.class, () -> f.resolve("out.png")).status);
        assertEquals(400, assertThrows(ApiException.class, () -> f.resolve("outdir", "secret.txt")).status);
        assertEquals(f.root().resolve("alias.png"), f.existingFile("alias.png"));
        assertEquals(404, assertThrows(ApiException.class, () -> f.existingFile("missing.png")).status);
        assertFalse(f.inside("out.png") || f.inside("outdir", "secret.txt") || f.inside("../x"));
        assertTrue(f.inside("alias.png") && f.inside("missing.png"));
    }
}
