package dev.perfusion.io.layout;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/** The two layouts a Stable Diffusion model is downloaded in. */
public enum CheckpointLayout {
    /**
     * A diffusers folder: model_index.json, and unet/, vae/, text_encoder/, scheduler/, tokenizer/ each with its
     * config; weights in diffusion_pytorch_model[.fp16].safetensors or model[.fp16].safetensors (or sharded with
     * a .safetensors.index.json).
     */
    DIFFUSERS_FOLDER,
    /** One original (CompVis/LDM) .safetensors file holding UNet, VAE and text encoder under their LDM names. */
    SINGLE_FILE;

    /** Which layout {@code path} is in; fails with a message naming it when it is neither, or a pickle file. */
    public static CheckpointLayout of(Path path) throws IOException {
        if (Files.isDirectory(path)) {
            if (Files.isRegularFile(path.resolve("model_index.json"))) return DIFFUSERS_FOLDER;
            throw new IOException(path + ": not a diffusers folder: it has no model_index.json (a diffusers folder"
                    + " holds model_index.json and unet/, vae/, text_encoder/, tokenizer/, scheduler/; for a"
                    + " single-file checkpoint pass the .safetensors file itself)");
        }
        if (!Files.isRegularFile(path)) throw new IOException(path + ": no such file or folder");
        if (isPickle(path)) throw pickleNotSupported(path);
        return SINGLE_FILE;
    }

    static IOException pickleNotSupported(Path path) {
        return new IOException(path + ": PyTorch pickle checkpoints (.ckpt/.pt/.bin) are not supported yet; convert"
                + " it to .safetensors first (e.g. torch.load(...)[\"state_dict\"] saved with safetensors' save_file,"
                + " or any ckpt-to-safetensors converter) and pass that file");
    }

    /** By extension, or by content: torch.save writes a zip archive ("PK" 03 04) or, in the legacy format, a pickle (0x80). */
    private static boolean isPickle(Path path) throws IOException {
        String name = path.getFileName().toString().toLowerCase(Locale.ROOT);
        if (name.endsWith(".ckpt") || name.endsWith(".pt") || name.endsWith(".pth") || name.endsWith(".bin")) return true;
        byte[] head = new byte[9];
        int n;
        try (InputStream in = Files.newInputStream(path)) {
            n = in.readNBytes(head, 0, head.length);
        }
        // safetensors: an 8-byte header length, then the JSON header
        if (n == 9 && head[8] == '{') return false;
        boolean zip = n == 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4;
        boolean legacyPickle = n >= 1 && (head[0] & 0xff) == 0x80;
        return zip || legacyPickle;
    }
}
