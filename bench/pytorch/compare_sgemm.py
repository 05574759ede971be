#!/usr/bin/python3
"""Square SGEMM, ours against torch.mm, in interleaved rounds on the same threads.

  OMP_NUM_THREADS=2 /usr/bin/python3 bench/pytorch/compare_sgemm.py --rounds 8

This machine's clock drifts by 10% within the hour and neighbours add a few per cent of
noise from minute to minute, so two separate runs cannot rank kernels that differ by less
than that. Each round here times both sides at each size back to back, alternating which
goes first, and the summary is the per-round ratio: the drift cancels within a pair.

Each side's figure for a round is the median time of single calls over about --seconds,
with torch.mm timed the usual way (warm-up call first, C preallocated
on its side; ours allocates C through the tensor library's buffer cache, which hands
back the same memory every call). Ours runs as build/bench/bench_tensor_ops
(matmul_square) with Google Benchmark repetitions, whose median aggregate is the same
statistic. With --baseline, a second build of ours (another commit's worktree) runs in
the same rounds, for before / after figures. Needs Debian's python3-torch
(scripts/install-dependencies.sh with DDPM_WITH_PYTORCH=1).
"""
import argparse
import json
import math
import statistics
import subprocess
import time

import torch


def torch_gflops(n, seconds):
    """Median GFLOP/s of torch.mm(a, b, out=c) on n x n floats over about `seconds`."""
    a, b, c = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
    torch.mm(a, b, out=c)  # warm-up: thread pool, page faults
    start = time.perf_counter()
    torch.mm(a, b, out=c)
    one_call = time.perf_counter() - start
    times = []
    for _ in range(max(5, min(500, int(seconds / one_call)))):
        start = time.perf_counter()
        torch.mm(a, b, out=c)
        times.append(time.perf_counter() - start)
    return 2.0 * n ** 3 / statistics.median(times) / 1e9


def ours_gflops(binary, n, threads, seconds):
    """Median GFLOP/s of our matmul over about `seconds`: one call (or a few, for at
    least 20 ms) per Google Benchmark repetition, the median over repetitions."""
    expected_call = 2.0 * n ** 3 / 60e9
    per_repetition = max(0.02, expected_call)
    repetitions = max(5, round(seconds / per_repetition))
    command = [binary, f"--benchmark_filter=^matmul_square/{threads}/{n}/", f"--benchmark_min_time={per_repetition}",
               f"--benchmark_repetitions={repetitions}", "--benchmark_report_aggregates_only=true",
               "--benchmark_format=json"]
    report = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    medians = [row for row in report["benchmarks"] if row.get("aggregate_name") == "median"]
    if len(medians) != 1:
        raise SystemExit(f"{binary}: expected one median row for matmul_square/{threads}/{n}, got {len(medians)}")
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[medians[0]["time_unit"]]
    return 2.0 * n ** 3 / (medians[0]["real_time"] * scale) / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default="build/bench/bench_tensor_ops")
    parser.add_argument("--baseline", help="another build's bench_tensor_ops, timed in the same rounds")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=1.5, help="timed calls per side, size and round")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    sides = [("ours", lambda n: ours_gflops(args.binary, n, args.threads, args.seconds))]
    if args.baseline:
        sides.append(("baseline", lambda n: ours_gflops(args.baseline, n, args.threads, args.seconds)))
    sides.append(("torch.mm", lambda n: torch_gflops(n, args.seconds)))
    results = {n: [] for n in args.sizes}  # n -> per round, {side: GFLOP/s}
    print(f"# torch {torch.__version__}, {args.threads} threads; ours: {args.binary}"
          + (f"; baseline: {args.baseline}" if args.baseline else ""))
    header = "".join(f"{name:>10s}" for name, _ in sides)
    print(f"{'round':>5s} {'n':>5s}{header} {'ours/torch':>11s}" + (f" {'ours/base':>10s}" if args.baseline else ""))
    for round_index in range(args.rounds):
        for n in args.sizes:
            # Alternate the order, so a drift within a round cancels over rounds.
            order = sides if round_index % 2 == 0 else sides[::-1]
            figures = {name: measure(n) for name, measure in order}
            results[n].append(figures)
            line = "".join(f"{figures[name]:10.1f}" for name, _ in sides)
            line += f" {figures['ours'] / figures['torch.mm']:11.3f}"
            if args.baseline:
                line += f" {figures['ours'] / figures['baseline']:10.3f}"
            print(f"{round_index + 1:5d} {n:5d}{line}", flush=True)

    print()
    for against in ["torch.mm"] + (["baseline"] if args.baseline else []):
        print(f"ours against {against}:")
        print(f"{'n':>5s} {'ours median':>12s} {against + ' median':>16s} {'ratio median':>13s} {'ratio geomean':>14s} "
              f"{'rounds ours >= it':>18s}")
        for n, rounds in results.items():
            ratios = [figures["ours"] / figures[against] for figures in rounds]
            geomean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
            wins = sum(r >= 1.0 for r in ratios)
            print(f"{n:5d} {statistics.median(f['ours'] for f in rounds):12.1f} "
                  f"{statistics.median(f[against] for f in rounds):16.1f} {statistics.median(ratios):13.3f} "
                  f"{geomean:14.3f} {wins:>11d} of {len(ratios)}")


if __name__ == "__main__":
    main()
