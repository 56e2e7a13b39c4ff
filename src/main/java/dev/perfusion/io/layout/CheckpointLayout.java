package dev.perfusion.io.layout;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The two layouts a Stable Diffusion model is downloaded in. */
public enum CheckpointLayout {
    /**
     * A diffusers folder: model_index.json, and unet/, vae/, text_encoder/, scheduler/, tokenizer/ each with its
     * config; weights in diffusion_pytorch_model[.fp16].safetensors or model[.fp16].safetensors (or sharded with
     * a .safetensors.index.json), or the same as PyTorch .bin files.
     */
    DIFFUSERS_FOLDER,
    /**
     * One original (CompVis/LDM) file holding UNet, VAE and text encoder under their LDM names: .safetensors, or a
     * PyTorch checkpoint (.ckpt, .pt, .pth, .bin; read without running it, {@link WeightFile}).
     */
    SINGLE_FILE;

    /** Which layout {@code path} is in; fails with a message naming it when it is neither. */
    public static CheckpointLayout of(Path path) throws IOException {
        if (Files.isDirectory(path)) {
            if (Files.isRegularFile(path.resolve("model_index.json"))) return DIFFUSERS_FOLDER;
            throw new IOException(path + ": not a diffusers folder: it has no model_index.json (a diffusers folder"
                    + " holds model_index.json and unet/, vae/, text_encoder/, tokenizer/, scheduler/; for a"
                    + " single-file checkpoint pass the file itself)");
        }
        if (!Files.isRegularFile(path)) throw new IOException(path + ": no such file or folder");
        return SINGLE_FILE;
    }
}
