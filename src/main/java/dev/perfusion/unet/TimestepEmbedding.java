package dev.perfusion.unet;

import dev.perfusion.nn.Linear;
import dev.perfusion.nn.Module;
import dev.perfusion.tensor.Ops;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/** Sinusoidal features of the timestep (diffusers' Timesteps) followed by linear_1, silu, linear_2. */
final class TimestepEmbedding extends Module {
    private final Linear linear1;
    private final Linear linear2;
    private final long featureDim;
    private final boolean flipSinToCos;
    private final double freqShift;

    TimestepEmbedding(long featureDim, long embedDim, boolean flipSinToCos, double freqShift) {
        this.featureDim = featureDim;
        this.flipSinToCos = flipSinToCos;
        this.freqShift = freqShift;
        this.linear1 = child("linear_1", new Linear(featureDim, embedDim, true));
        this.linear2 = child("linear_2", new Linear(embedDim, embedDim, true));
    }

    /** timesteps [B] (float) -> [B, featureDim]: [sin | cos] of t * 10000^(-i / (half - shift)), flipped to [cos | sin]. */
    Tensor sinusoidal(Tensor timesteps) {
        long half = featureDim / 2;
        Tensor exponent = Ops.mul(torch.arange(new Scalar(0), new Scalar(half), new org.bytedeco.pytorch.TensorOptions(torch.ScalarType.Float)),
                -Math.log(10000.0) / (half - freqShift));
        Tensor args = Ops.mul(timesteps.to(torch.ScalarType.Float).unsqueeze(1), Ops.exp(exponent).to(timesteps.device(), torch.ScalarType.Float).unsqueeze(0));
        Tensor sin = args.sin(), cos = args.cos();
        Tensor emb = flipSinToCos ? Ops.cat(1, cos, sin) : Ops.cat(1, sin, cos);
        if (featureDim % 2 == 1) emb = Ops.pad2d(emb.unsqueeze(0), 0, 1, 0, 0).squeeze(0);
        return emb;
    }

    Tensor forward(Tensor timesteps, torch.ScalarType dtype) {
        return linear2.forward(Ops.silu(linear1.forward(sinusoidal(timesteps).to(dtype))));
    }
}
