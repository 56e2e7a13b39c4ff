package dev.perfusion.vae;

import dev.perfusion.nn.Conv2d;
import dev.perfusion.nn.GroupNorm;
import dev.perfusion.nn.Module;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;

/** diffusers' VAE Encoder: image -> 2 * latent_channels moments (mean and log-variance) at 1/2^(levels-1) size. */
final class Encoder extends Module {
    private final Conv2d convIn;
    private final List<DownEncoderBlock2D> downBlocks;
    private final UNetMidBlock2D midBlock;
    private final GroupNorm convNormOut;
    private final Conv2d convOut;

    Encoder(VaeConfig c) {
        List<Integer> channels = c.blockOutChannels();
        int groups = c.normNumGroups();
        this.convIn = child("conv_in", new Conv2d(c.inChannels(), channels.get(0), 3, 1, 1));
        List<DownEncoderBlock2D> blocks = new ArrayList<>();
        int out = channels.get(0);
        for (int i = 0; i < channels.size(); i++) {
            int in = out;
            out = channels.get(i);
            boolean last = i == channels.size() - 1;
            blocks.add(new DownEncoderBlock2D(in, out, c.layersPerBlock(), groups, AutoencoderKL.NORM_EPS, !last));
        }
        this.downBlocks = children("down_blocks", blocks);
        int deepest = channels.get(channels.size() - 1);
        this.midBlock = child("mid_block", new UNetMidBlock2D(deepest, groups, AutoencoderKL.NORM_EPS, c.midBlockAddAttention()));
        this.convNormOut = child("conv_norm_out", new GroupNorm(groups, deepest, AutoencoderKL.NORM_EPS));
        this.convOut = child("conv_out", new Conv2d(deepest, 2L * c.latentChannels(), 3, 1, 1));
    }

    Tensor forward(Tensor image) {
        Tensor h = convIn.forward(image);
        for (DownEncoderBlock2D block : downBlocks) h = block.forward(h);
        h = midBlock.forward(h);
        return convOut.forward(Ops.silu(convNormOut.forward(h)));
    }
}
