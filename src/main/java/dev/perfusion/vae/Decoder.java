package dev.perfusion.vae;

import dev.perfusion.nn.Conv2d;
import dev.perfusion.nn.GroupNorm;
import dev.perfusion.nn.Module;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;

/** diffusers' VAE Decoder: latents -> image, walking block_out_channels from the deepest level back up. */
final class Decoder extends Module {
    private final Conv2d convIn;
    private final UNetMidBlock2D midBlock;
    private final List<UpDecoderBlock2D> upBlocks;
    private final GroupNorm convNormOut;
    private final Conv2d convOut;

    Decoder(VaeConfig c) {
        List<Integer> channels = c.blockOutChannels();
        int groups = c.normNumGroups();
        int deepest = channels.get(channels.size() - 1);
        this.convIn = child("conv_in", new Conv2d(c.latentChannels(), deepest, 3, 1, 1));
        this.midBlock = child("mid_block", new UNetMidBlock2D(deepest, groups, AutoencoderKL.NORM_EPS, c.midBlockAddAttention()));
        List<UpDecoderBlock2D> blocks = new ArrayList<>();
        int out = deepest;
        for (int i = 0; i < channels.size(); i++) {
            int in = out;
            out = channels.get(channels.size() - 1 - i);
            boolean last = i == channels.size() - 1;
            blocks.add(new UpDecoderBlock2D(in, out, c.layersPerBlock() + 1, groups, AutoencoderKL.NORM_EPS, !last));
        }
        this.upBlocks = children("up_blocks", blocks);
        this.convNormOut = child("conv_norm_out", new GroupNorm(groups, channels.get(0), AutoencoderKL.NORM_EPS));
        this.convOut = child("conv_out", new Conv2d(channels.get(0), c.outChannels(), 3, 1, 1));
    }

    Tensor forward(Tensor z) {
        Tensor h = midBlock.forward(convIn.forward(z));
        for (UpDecoderBlock2D block : upBlocks) h = block.forward(h);
        return convOut.forward(Ops.silu(convNormOut.forward(h)));
    }
}
