#!/usr/bin/python3
"""PyTorch side of bench/bench_unet_step.cpp and bench/bench_sampling.cpp: the flagship
U-Net (interop/pytorch/ddpm_unet.py, the same model as ddpm.cpp's) in PyTorch.

  OMP_NUM_THREADS=2 /usr/bin/python3 bench/pytorch/bench_unet_step.py --mode train --batch 64 --threads 2
  OMP_NUM_THREADS=2 /usr/bin/python3 bench/pytorch/bench_unet_step.py --mode sample --batch 64 --threads 2

train : one training step as `ddpm train` takes it: timesteps and noise drawn, q_sample,
        forward, L_simple, backward, gradient-norm clip 1.0, Adam, EMA update.
sample: one ancestral sampling step: forward in eval mode without gradients, and the update.
ddim50: a whole DDIM run of 50 steps (eta = 0) from T = 1000 (each timed "step" is a run).
ancestral1000: a whole ancestral run through all 1000 steps (each timed "step" is a run).
Prints the median and quartiles of --steps timed steps after --warmup untimed ones, and the
peak resident memory of the process.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "interop", "pytorch"))
import ddpm_unet  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["train", "sample", "ddim50", "ancestral1000"], required=True)
    parser.add_argument("--ch", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="one JSON line (for compare_unet_step.py)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    config = ddpm_unet.UNetConfig(ch=args.ch)
    model = ddpm_unet.UNet(config)
    alphas_cumprod = ddpm_unet.noise_schedule("linear", 1000).float()
    shape = (args.batch, config.in_channels, config.image_size, config.image_size)
    images = torch.rand(shape) * 2 - 1
    betas = 1 - alphas_cumprod / torch.cat([torch.ones(1), alphas_cumprod[:-1]])

    def ancestral_update(x, t):
        """x_{t-1} from x_t: one model call, the posterior mean, and noise (sigma^2 = beta) for t > 0."""
        epsilon = model(x, torch.full((args.batch,), t, dtype=torch.int64))
        mean = (x - betas[t] / (1 - alphas_cumprod[t]).sqrt() * epsilon) / (1 - betas[t]).sqrt()
        return mean + betas[t].sqrt() * torch.randn(shape) if t > 0 else mean

    if args.mode == "train":
        optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
        ema = [p.detach().clone() for p in model.parameters()]

        def step():
            t = torch.randint(0, 1000, (args.batch,))
            noise = torch.randn(shape)
            a = alphas_cumprod[t].view(-1, 1, 1, 1)
            xt = a.sqrt() * images + (1 - a).sqrt() * noise
            loss = F.mse_loss(model(xt, t), noise)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            with torch.no_grad():
                for average, parameter in zip(ema, model.parameters()):
                    average.mul_(0.9999).add_(parameter, alpha=1 - 0.9999)
    elif args.mode == "ddim50":
        # 64 images by DDIM, 50 steps (eta = 0) from T = 1000, as `ddpm sample --sampler ddim --steps 50`.
        model.eval()
        timesteps = list(range(0, 1000, 1000 // 50))

        def step():
            x = torch.randn(shape)
            with torch.no_grad():
                for index in reversed(range(len(timesteps))):
                    t = timesteps[index]
                    a = alphas_cumprod[t]
                    a_prev = alphas_cumprod[timesteps[index - 1]] if index > 0 else torch.tensor(1.0)
                    epsilon = model(x, torch.full((args.batch,), t, dtype=torch.int64))
                    x0 = ((x - (1 - a).sqrt() * epsilon) / a.sqrt()).clamp(-1, 1)
                    x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * epsilon
    elif args.mode == "ancestral1000":
        # 64 images by the ancestral sampler through all 1000 steps (sigma^2 = beta), as
        # `ddpm sample --sampler ancestral`.
        model.eval()

        def step():
            x = torch.randn(shape)
            with torch.no_grad():
                for t in reversed(range(1000)):
                    x = ancestral_update(x, t)
    else:
        model.eval()
        x = torch.randn(shape)

        def step():
            nonlocal x
            with torch.no_grad():
                x = ancestral_update(x, 500)

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    quartiles = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json:
        print(json.dumps({"median_ms": statistics.median(times), "times_ms": times, "peak_rss_MiB": peak}))
        return
    print(f"torch {torch.__version__} {args.mode} step, batch {args.batch}, {args.threads} threads: "
          f"median {statistics.median(times):.1f} ms (quartiles {quartiles[0]:.1f}-{quartiles[2]:.1f}), "
          f"peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
