"""The flagship U-Net of ddpm.cpp as a PyTorch module, and the checkpoints of `ddpm train`.

docs/unet.md is the specification both sides follow: the tensor names, shapes and the
order of operations are the same here and in nn/unet.cpp, so a checkpoint moves between
them unchanged. Three lines take a model trained by `ddpm train` into PyTorch:

    import ddpm_unet
    model, config, metadata = ddpm_unet.load_checkpoint("runs/fmnist/checkpoint.safetensors")
    images = ddpm_unet.sample_ddim(model, metadata, count=16, steps=50)   # [16, C, H, W] in [-1, 1]

Needs only torch (Debian's python3-torch); safetensors files are read and written here.
"""
from __future__ import annotations

import dataclasses
import json
import math
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

GROUPS = 8  # every GroupNorm: 8 groups, eps 1e-5


@dataclasses.dataclass
class UNetConfig:
    in_channels: int = 1
    image_size: int = 28
    ch: int = 32
    ch_mult: tuple = (1, 2, 2)
    num_res_blocks: int = 2
    attn_resolutions: tuple = (7,)
    dropout: float = 0.1
    num_classes: int = 0
    learn_sigma: bool = False

    @property
    def out_channels(self) -> int:
        return self.in_channels * (2 if self.learn_sigma else 1)

    def to_json(self) -> str:
        """The JSON of a checkpoint's __metadata__ "config" (sorted keys, as nn/unet.cpp writes it)."""
        fields = dataclasses.asdict(self)
        fields["ch_mult"], fields["attn_resolutions"] = list(self.ch_mult), list(self.attn_resolutions)
        return json.dumps(fields, sort_keys=True, separators=(",", ":"))

    @staticmethod
    def from_json(text: str) -> "UNetConfig":
        fields = json.loads(text)
        fields["ch_mult"], fields["attn_resolutions"] = tuple(fields["ch_mult"]), tuple(fields["attn_resolutions"])
        return UNetConfig(**fields)


def timestep_embedding(timesteps: torch.Tensor, ch: int) -> torch.Tensor:
    """[B] integer timesteps -> [B, ch]: sines of t·f_i, then cosines, f_i = 10000^(-i / (ch/2 - 1))."""
    half = ch // 2
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / (half - 1))
    angles = timesteps.to(torch.float32)[:, None] * frequencies[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class ChannelLinear(nn.Linear):
    """A linear map of each pixel's channel vector: a 1x1 convolution stored as a linear layer, [C, C]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, H, W] -> [B, C, H, W]
        return F.linear(x.permute(0, 2, 3, 1), self.weight, self.bias).permute(0, 3, 1, 2)


def zero_(module: nn.Module) -> nn.Module:
    for parameter in module.parameters():
        nn.init.zeros_(parameter)
    return module


class ResBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, temb_channels: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(GROUPS, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.temb_proj = nn.Linear(temb_channels, out_channels)
        self.norm2 = nn.GroupNorm(GROUPS, out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = zero_(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor, silu_temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(silu_temb)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return (self.skip(x) if self.skip is not None else x) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over the pixels, softmax over the keys, scaled by 1/sqrt(C)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.GroupNorm(GROUPS, channels)
        self.q, self.k, self.v = ChannelLinear(channels, channels), ChannelLinear(channels, channels), ChannelLinear(channels, channels)
        self.proj = zero_(ChannelLinear(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        n = self.norm(x)
        q, k, v = (layer(n).reshape(batch, channels, height * width) for layer in (self.q, self.k, self.v))
        weights = torch.softmax(torch.bmm(q.transpose(1, 2), k) / math.sqrt(channels), dim=-1)  # [B, HW, HW]
        attended = torch.bmm(v, weights.transpose(1, 2)).reshape(batch, channels, height, width)
        return x + self.proj(attended)


class UNet(nn.Module):
    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        ch, temb_channels = config.ch, 4 * config.ch
        self.time_embed = nn.Module()
        self.time_embed.fc1 = nn.Linear(ch, temb_channels)
        self.time_embed.fc2 = nn.Linear(temb_channels, temb_channels)
        # Row num_classes is the null label (unconditional and guided sampling).
        self.label_embed = nn.Embedding(config.num_classes + 1, temb_channels) if config.num_classes > 0 else None
        self.conv_in = nn.Conv2d(config.in_channels, ch, 3, padding=1)

        skip_channels, current, resolution = [ch], ch, config.image_size
        self.down = nn.ModuleList()
        for level, multiplier in enumerate(config.ch_mult):
            down = nn.Module()
            down.block, down.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(config.num_res_blocks):
                down.block.append(ResBlock(current, ch * multiplier, temb_channels, config.dropout))
                current = ch * multiplier
                if resolution in config.attn_resolutions:
                    down.attn.append(AttnBlock(current))
                skip_channels.append(current)
            if level != len(config.ch_mult) - 1:
                down.downsample = nn.Conv2d(current, current, 3, stride=2, padding=1)
                skip_channels.append(current)
                resolution //= 2
            self.down.append(down)

        self.mid = nn.Module()
        self.mid.block1 = ResBlock(current, current, temb_channels, config.dropout)
        self.mid.attn = AttnBlock(current)
        self.mid.block2 = ResBlock(current, current, temb_channels, config.dropout)

        ups = []
        for level in reversed(range(len(config.ch_mult))):
            up = nn.Module()
            up.block, up.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(config.num_res_blocks + 1):
                up.block.append(ResBlock(current + skip_channels.pop(), ch * config.ch_mult[level], temb_channels, config.dropout))
                current = ch * config.ch_mult[level]
                if resolution in config.attn_resolutions:
                    up.attn.append(AttnBlock(current))
            if level != 0:
                up.upsample = nn.Conv2d(current, current, 3, padding=1)
                resolution *= 2
            ups.append(up)
        self.up = nn.ModuleList(reversed(ups))  # up.0 is the full resolution, as the checkpoints name it

        self.norm_out = nn.GroupNorm(GROUPS, current)
        self.conv_out = zero_(nn.Conv2d(current, config.out_channels, 3, padding=1))

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, C, H, W] in [-1, 1], timesteps [B] int64, labels [B] int64 (None: the null label)."""
        temb = self.time_embed.fc2(F.silu(self.time_embed.fc1(timestep_embedding(timesteps, self.config.ch))))
        if self.label_embed is not None:
            if labels is None:
                labels = torch.full((x.shape[0],), self.config.num_classes, dtype=torch.int64)
            temb = temb + self.label_embed.weight[labels]
        silu_temb = F.silu(temb)

        skips = [self.conv_in(x)]
        for down in self.down:
            for j, block in enumerate(down.block):
                h = block(skips[-1], silu_temb)
                skips.append(down.attn[j](h) if len(down.attn) else h)
            if hasattr(down, "downsample"):
                skips.append(down.downsample(skips[-1]))
        h = self.mid.block2(self.mid.attn(self.mid.block1(skips[-1], silu_temb)), silu_temb)
        for up in reversed(self.up):
            for j, block in enumerate(up.block):
                h = block(torch.cat([h, skips.pop()], dim=1), silu_temb)
                if len(up.attn):
                    h = up.attn[j](h)
            if hasattr(up, "upsample"):
                h = up.upsample(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


# --- safetensors (the format's 8-byte header length, JSON header, little-endian data) ---

_DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}


def read_safetensors(path: str) -> tuple[dict, dict]:
    """Returns ({name: tensor}, __metadata__)."""
    with open(path, "rb") as file:
        data = file.read()
    (header_size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_size])
    metadata = header.pop("__metadata__", {})
    body = data[8 + header_size:]
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        raw = bytearray(body[begin:end])  # a writable copy, as torch.frombuffer wants
        tensors[name] = torch.frombuffer(raw, dtype=_DTYPES[entry["dtype"]]).reshape(entry["shape"]) if raw else \
            torch.zeros(entry["shape"], dtype=_DTYPES[entry["dtype"]])
    return tensors, metadata


def write_safetensors(path: str, tensors: dict, metadata: dict | None = None) -> None:
    names = {v: k for k, v in _DTYPES.items()}
    header, blobs, offset = ({"__metadata__": metadata} if metadata else {}), [], 0
    for name, tensor in tensors.items():
        blob = tensor.detach().contiguous().cpu().numpy().tobytes()  # x86 is little-endian, as the format
        header[name] = {"dtype": names[tensor.dtype], "shape": list(tensor.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as file:
        file.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def load_checkpoint(path: str, ema: bool = True) -> tuple[UNet, UNetConfig, dict]:
    """A `ddpm train` checkpoint as (model in eval mode, config, metadata); EMA weights by default."""
    tensors, metadata = read_safetensors(path)
    config = UNetConfig.from_json(metadata["config"])
    prefix = "ema." if ema else ""
    weights = {name[len(prefix):]: tensor for name, tensor in tensors.items()
               if name.startswith(prefix) and not name.startswith("optim.") and (ema or not name.startswith("ema."))}
    model = UNet(config)
    model.load_state_dict(weights, strict=True)
    return model.eval(), config, metadata


# --- the noise schedule and a DDIM sampler, for using a loaded model ---

def noise_schedule(kind: str, timesteps: int) -> torch.Tensor:
    """ᾱ_t for t = 0 .. T-1 (float64), as ddpm/schedule.cpp makes them: betas from 1e-4 to 0.02
    scaled by 1000/T (linear as Ho et al., quadratic, sigmoid), or cosine (Nichol & Dhariwal)."""
    scale = 1000 / timesteps
    low, high = scale * 1e-4, scale * 0.02
    if kind == "linear":
        betas = torch.linspace(low, high, timesteps, dtype=torch.float64)
    elif kind == "quadratic":
        betas = torch.linspace(math.sqrt(low), math.sqrt(high), timesteps, dtype=torch.float64) ** 2
    elif kind == "sigmoid":
        betas = torch.sigmoid(torch.linspace(-6, 6, timesteps, dtype=torch.float64)) * (high - low) + low
    elif kind == "cosine":
        f = lambda t: math.cos((t / timesteps + 0.008) / 1.008 * math.pi / 2) ** 2
        betas = torch.tensor([min(1 - f(t + 1) / f(t), 0.999) for t in range(timesteps)], dtype=torch.float64)
    else:
        raise ValueError(f"unknown noise schedule '{kind}' (linear, cosine, quadratic, sigmoid)")
    return torch.cumprod(1 - betas, dim=0)


@torch.no_grad()
def sample_ddim(model: UNet, metadata: dict, count: int, steps: int = 50, seed: int = 0,
                labels: torch.Tensor | None = None) -> torch.Tensor:
    """Deterministic DDIM (eta 0) over `steps` evenly spaced timesteps; [count, C, H, W] in [-1, 1]."""
    config = model.config
    alphas_cumprod = noise_schedule(metadata.get("schedule", "linear"), int(metadata.get("timesteps", 1000)))
    total = len(alphas_cumprod)
    kept = [round(i * (total - 1) / (steps - 1)) for i in range(steps)] if steps > 1 else [total - 1]
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(count, config.in_channels, config.image_size, config.image_size, generator=generator, dtype=torch.float64)
    for index in reversed(range(len(kept))):
        t = kept[index]
        a_t = alphas_cumprod[t]
        a_prev = alphas_cumprod[kept[index - 1]] if index > 0 else torch.tensor(1.0, dtype=torch.float64)
        output = model(x.float(), torch.full((count,), t, dtype=torch.int64), labels).double()
        prediction = output[:, :config.in_channels]  # eps, x0 or v, as the checkpoint's "predict" says
        kind = metadata.get("predict", "eps")
        if kind == "x0":
            x0 = prediction
        elif kind == "v":
            x0 = a_t.sqrt() * x - (1 - a_t).sqrt() * prediction
        else:
            x0 = (x - (1 - a_t).sqrt() * prediction) / a_t.sqrt()
        x0 = x0.clamp(-1, 1)
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * ((x - a_t.sqrt() * x0) / (1 - a_t).sqrt())
    return x.float()
