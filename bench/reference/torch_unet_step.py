#!/usr/bin/env python3
"""The side-by-side reference for `./perfusion bench`: one guided UNet step of diffusers' UNet2DConditionModel
(SD 1.x/2.x configs) on PyTorch, written out in plain torch so it runs where diffusers is not installed.

It is the project's own measuring tool, not part of the build: it needs a PyTorch wheel, which the project never
depends on. Before timing it proves it is diffusers' network, by loading the golden fixture's diffusers UNet and
reproducing diffusers' own output (`--check FIXTURE_DIR`).

    python3 -m venv --system-site-packages /tmp/tv && /tmp/tv/bin/pip install --no-deps torch-*.whl
    /tmp/tv/bin/python bench/reference/torch_unet_step.py --check ../shared/fixtures/sd-tiny --sizes 256 --repeats 3

Prints the same rows as `./perfusion bench` (seconds per step of batch 2, and the 1024^3 matmul rate in the same
process), so the two can be run one after the other in one window and compared as ratios.
"""
import argparse
import json
import math
import statistics
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.backends.nnpack.set_flags(False)  # unsupported on these CPUs: each convolution would warn, then fall back anyway

SD15 = dict(block_out_channels=[320, 640, 1280, 1280], layers_per_block=2, attention_head_dim=8,
            cross_attention_dim=768, in_channels=4, out_channels=4, norm_num_groups=32, norm_eps=1e-5,
            down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
            up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3, flip_sin_to_cos=True, freq_shift=0)


class Attention(nn.Module):
    def __init__(self, dim, context_dim, heads):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])

    def forward(self, x, context=None):
        context = x if context is None else context
        b = x.shape[0]
        q, k, v = (t.view(b, -1, self.heads, t.shape[-1] // self.heads).transpose(1, 2)
                   for t in (self.to_q(x), self.to_k(context), self.to_v(context)))
        out = F.scaled_dot_product_attention(q, k, v)  # diffusers' AttnProcessor2_0
        return self.to_out[0](out.transpose(1, 2).reshape(b, -1, x.shape[-1]))


class GEGLU(nn.Module):
    def __init__(self, dim, inner):
        super().__init__()
        self.proj = nn.Linear(dim, inner * 2)

    def forward(self, x):
        hidden, gate = self.proj(x).chunk(2, dim=-1)
        return hidden * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.net = nn.ModuleList([GEGLU(dim, dim * 4), nn.Dropout(0.0), nn.Linear(dim * 4, dim)])

    def forward(self, x):
        for layer in self.net:
            x = layer(x)
        return x


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, context_dim, heads):
        super().__init__()
        self.norm1, self.attn1 = nn.LayerNorm(dim), Attention(dim, dim, heads)
        self.norm2, self.attn2 = nn.LayerNorm(dim), Attention(dim, context_dim, heads)
        self.norm3, self.ff = nn.LayerNorm(dim), FeedForward(dim)

    def forward(self, x, context):
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x), context) + x
        return self.ff(self.norm3(x)) + x


class Transformer2DModel(nn.Module):
    def __init__(self, channels, context_dim, heads, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = nn.Conv2d(channels, channels, 1)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(channels, context_dim, heads)])
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x, context):
        b, c, h, w = x.shape
        hidden = self.proj_in(self.norm(x)).permute(0, 2, 3, 1).reshape(b, h * w, c)
        for block in self.transformer_blocks:
            hidden = block(hidden, context)
        return self.proj_out(hidden.reshape(b, h, w, c).permute(0, 3, 1, 2)) + x


class ResnetBlock2D(nn.Module):
    def __init__(self, cin, cout, temb, groups, eps):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, cin, eps=eps), nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb, cout)
        self.norm2, self.conv2 = nn.GroupNorm(groups, cout, eps=eps), nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.conv_shortcut is None else self.conv_shortcut(x)) + h


class Sampler(nn.Module):
    def __init__(self, channels, down):
        super().__init__()
        self.down = down
        self.conv = nn.Conv2d(channels, channels, 3, stride=2 if down else 1, padding=1)

    def forward(self, x):
        return self.conv(x if self.down else F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Block(nn.Module):
    """A down, mid or up block: resnets, each followed by an attention where the block has them."""

    def __init__(self, resnets, attentions, sampler, sampler_name):
        super().__init__()
        self.resnets = nn.ModuleList(resnets)
        self.attentions = nn.ModuleList(attentions) if attentions else None
        if sampler is not None:
            setattr(self, sampler_name, nn.ModuleList([sampler]))
        self._sampler_name = sampler_name if sampler is not None else None

    @property
    def sampler(self):
        return getattr(self, self._sampler_name)[0] if self._sampler_name else None


class UNet2DConditionModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ch, groups, eps = cfg["block_out_channels"], cfg["norm_num_groups"], cfg["norm_eps"]
        heads = cfg["attention_head_dim"]
        heads = heads if isinstance(heads, list) else [heads] * len(ch)
        ctx, temb = cfg["cross_attention_dim"], ch[0] * 4
        self.cfg = cfg
        self.conv_in = nn.Conv2d(cfg["in_channels"], ch[0], 3, padding=1)
        self.time_embedding = nn.Module()
        self.time_embedding.linear_1, self.time_embedding.linear_2 = nn.Linear(ch[0], temb), nn.Linear(temb, temb)
        layers = cfg["layers_per_block"]

        def attn(c, h):
            return Transformer2DModel(c, ctx, h, groups)

        self.down_blocks = nn.ModuleList()
        cout = ch[0]
        for i, kind in enumerate(cfg["down_block_types"]):
            cin, cout = cout, ch[i]
            last = i == len(ch) - 1
            self.down_blocks.append(Block(
                [ResnetBlock2D(cin if j == 0 else cout, cout, temb, groups, eps) for j in range(layers)],
                [attn(cout, heads[i]) for _ in range(layers)] if kind.startswith("CrossAttn") else None,
                None if last else Sampler(cout, True), "downsamplers"))
        self.mid_block = Block([ResnetBlock2D(ch[-1], ch[-1], temb, groups, eps) for _ in range(2)],
                               [attn(ch[-1], heads[-1])], None, "")
        self.up_blocks = nn.ModuleList()
        rch, rheads = list(reversed(ch)), list(reversed(heads))
        prev = rch[0]
        for i, kind in enumerate(cfg["up_block_types"]):
            cout, cskip_in = rch[i], rch[min(i + 1, len(ch) - 1)]
            last = i == len(ch) - 1
            self.up_blocks.append(Block(
                [ResnetBlock2D((prev if j == 0 else cout) + (cskip_in if j == layers else cout), cout, temb, groups, eps)
                 for j in range(layers + 1)],
                [attn(cout, rheads[i]) for _ in range(layers + 1)] if kind.startswith("CrossAttn") else None,
                None if last else Sampler(cout, False), "upsamplers"))
            prev = cout
        self.conv_norm_out = nn.GroupNorm(groups, ch[0], eps=eps)
        self.conv_out = nn.Conv2d(ch[0], cfg["out_channels"], 3, padding=1)

    def time_proj(self, t):
        half = self.cfg["block_out_channels"][0] // 2
        exponent = -math.log(10000) * torch.arange(half, dtype=torch.float32) / (half - self.cfg["freq_shift"])
        emb = t[:, None].float() * torch.exp(exponent)[None, :]
        emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=-1)
        return torch.cat([emb[:, half:], emb[:, :half]], dim=-1) if self.cfg["flip_sin_to_cos"] else emb

    def forward(self, sample, t, context):
        t = t.expand(sample.shape[0])
        temb = self.time_embedding.linear_2(F.silu(self.time_embedding.linear_1(self.time_proj(t).to(sample.dtype))))
        x = self.conv_in(sample)
        skips = [x]
        for block in self.down_blocks:
            for j, resnet in enumerate(block.resnets):
                x = resnet(x, temb)
                if block.attentions is not None:
                    x = block.attentions[j](x, context)
                skips.append(x)
            if block.sampler is not None:
                x = block.sampler(x)
                skips.append(x)
        x = self.mid_block.resnets[0](x, temb)
        x = self.mid_block.attentions[0](x, context)
        x = self.mid_block.resnets[1](x, temb)
        for block in self.up_blocks:
            for j, resnet in enumerate(block.resnets):
                x = resnet(torch.cat([x, skips.pop()], dim=1), temb)
                if block.attentions is not None:
                    x = block.attentions[j](x, context)
            if block.sampler is not None:
                x = block.sampler(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    dtypes = {"F32": np.float32, "F16": np.float16, "BF16": None}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[start:end], dtype=dtypes[info["dtype"]])
                                     .reshape(info["shape"]).astype(np.float32))
    return out


def check(fixture):
    """Loads the fixture's diffusers UNet and reproduces diffusers' golden output."""
    cfg = json.load(open(f"{fixture}/diffusers/unet/config.json"))
    unet = UNet2DConditionModel(cfg).eval()
    state = read_safetensors(f"{fixture}/diffusers/unet/diffusion_pytorch_model.safetensors")
    unet.load_state_dict(state, strict=True)
    g = lambda n: torch.from_numpy(np.load(f"{fixture}/golden/unet_square_{n}.npy"))
    with torch.inference_mode():
        out = unet(g("sample"), g("timestep"), g("encoder_hidden_states"))
    diff = (out - g("out")).abs().max().item()
    print(f"fixture check: max abs diff to diffusers' golden UNet output {diff:.2e}")
    if diff > 1e-4:
        raise SystemExit("this is not diffusers' UNet: the golden output is not reproduced")


def matmul_rate():
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(10):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * 1024 ** 3 / statistics.median(times) / 1e9


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", metavar="FIXTURE_DIR", help="prove the network against the golden fixture first")
    p.add_argument("--sizes", default="256,512")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="0: every core")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--channels-last", action="store_true", help="convolutions in NHWC (not diffusers' default)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.check:
        check(a.check)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, BLAS {torch.backends.mkl.is_available() and 'MKL' or 'other'}")
    print(f"fp32 matmul 1024^3: {matmul_rate():.0f} GFLOP/s")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(SD15).eval()
    dtype = torch.bfloat16 if a.precision == "bf16" else torch.float32
    memory_format = torch.channels_last if a.channels_last else torch.contiguous_format
    unet = unet.to(dtype=dtype, memory_format=memory_format)
    context = torch.randn(2, 77, 768, dtype=dtype)
    for size in (int(s) for s in a.sizes.split(",")):
        latents = torch.randn(2, 4, size // 8, size // 8, dtype=dtype).contiguous(memory_format=memory_format)
        t = torch.tensor([500.0])
        with torch.inference_mode():
            unet(latents, t, context)  # warm-up
            times = []
            for _ in range(a.repeats):
                t0 = time.perf_counter()
                unet(latents, t, context)
                times.append(time.perf_counter() - t0)
        print(f"UNet step {size}x{size}, batch 2, {a.precision}{', channels-last' if a.channels_last else ''}: median {statistics.median(times):.2f} s/step "
              f"over {a.repeats} ({', '.join(f'{x:.2f}' for x in times)})")


if __name__ == "__main__":
    main()
