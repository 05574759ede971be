#!/usr/bin/python3
"""PyTorch side of bench/bench_unet_kernels.cpp: the same U-Net kernels at batch 64.

  OMP_NUM_THREADS=2 /usr/bin/python3 bench/pytorch/bench_unet_kernels.py --threads 2

Prints one line per kernel: name and median milliseconds. Needs Debian's python3-torch
and libopenblas0-pthread (scripts/install-dependencies.sh with DDPM_WITH_PYTORCH=1).
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

BATCH = 64
# (name, in_channels, out_channels, size, kernel, stride): as bench/unet_shapes.hpp
CONVOLUTIONS = [
    ("conv_in 1->32 @28", 1, 32, 28, 3, 1),
    ("res 32->32 @28", 32, 32, 28, 3, 1),
    ("down 32->32 @28 s2", 32, 32, 28, 3, 2),
    ("res 32->64 @14", 32, 64, 14, 3, 1),
    ("skip 32->64 @14 1x1", 32, 64, 14, 1, 1),
    ("res 64->64 @14", 64, 64, 14, 3, 1),
    ("down 64->64 @14 s2", 64, 64, 14, 3, 2),
    ("res 64->64 @7", 64, 64, 7, 3, 1),
    ("res 128->64 @7", 128, 64, 7, 3, 1),
    ("skip 128->64 @7 1x1", 128, 64, 7, 1, 1),
    ("res 128->64 @14", 128, 64, 14, 3, 1),
    ("res 96->64 @14", 96, 64, 14, 3, 1),
    ("up 64->64 @28", 64, 64, 28, 3, 1),
    ("res 96->32 @28", 96, 32, 28, 3, 1),
    ("res 64->32 @28", 64, 32, 28, 3, 1),
    ("skip 96->32 @28 1x1", 96, 32, 28, 1, 1),
    ("conv_out 32->1 @28", 32, 1, 28, 3, 1),
]


def median_ms(function, seconds=0.5):
    function()
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 3:
        t0 = time.perf_counter()
        function()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=0.5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}")
    with torch.no_grad():
        for name, cin, cout, size, kernel, stride in CONVOLUTIONS:
            x = torch.randn(BATCH, cin, size, size)
            w = torch.randn(cout, cin, kernel, kernel)
            b = torch.randn(cout)
            padding = kernel // 2
            y = F.conv2d(x, w, b, stride, padding)
            g = torch.randn_like(y)
            print(f"conv {name} fwd\t{median_ms(lambda: F.conv2d(x, w, b, stride, padding), args.seconds):.3f}")
            print(f"conv {name} dX\t{median_ms(lambda: torch.nn.grad.conv2d_input(x.shape, w, g, stride, padding), args.seconds):.3f}")
            print(f"conv {name} dW\t{median_ms(lambda: torch.nn.grad.conv2d_weight(x, w.shape, g, stride, padding), args.seconds):.3f}")
    for channels, size in [(32, 28), (64, 14), (64, 7), (96, 28), (128, 14)]:
        x = torch.randn(BATCH, channels, size, size, requires_grad=True)
        gamma = torch.randn(channels, requires_grad=True)
        beta = torch.randn(channels, requires_grad=True)
        forward = lambda: F.silu(F.group_norm(x, 8, gamma, beta, 1e-5))
        with torch.no_grad():
            print(f"group_norm_silu {channels}@{size} fwd\t{median_ms(forward, args.seconds):.3f}")
        y = forward()
        g = torch.randn_like(y)
        print(f"group_norm_silu {channels}@{size} bwd\t"
              f"{median_ms(lambda: torch.autograd.grad(y, (x, gamma, beta), g, retain_graph=True), args.seconds):.3f}")
    length, channels = 49, 64
    q, k, v = (torch.randn(BATCH, length, channels, requires_grad=True) for _ in range(3))
    scale = channels ** -0.5
    attend = lambda: torch.bmm(torch.softmax(torch.bmm(q, k.transpose(1, 2)) * scale, dim=-1), v)
    with torch.no_grad():
        print(f"attention 64@7 fwd\t{median_ms(attend, args.seconds):.3f}")
    out = attend()
    g = torch.randn_like(out)
    print(f"attention 64@7 bwd\t{median_ms(lambda: torch.autograd.grad(out, (q, k, v), g, retain_graph=True), args.seconds):.3f}")


if __name__ == "__main__":
    main()
