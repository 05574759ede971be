#!/usr/bin/python3
"""The default U-Net's training step or sampling step, ours against PyTorch 1.13, in
alternating rounds on the same threads (issue 19's measure).

  OMP_NUM_THREADS=2 /usr/bin/python3 bench/pytorch/compare_unet_step.py --mode train --rounds 8
  OMP_NUM_THREADS=2 /usr/bin/python3 bench/pytorch/compare_unet_step.py --mode sample --rounds 8
  OMP_NUM_THREADS=2 /usr/bin/python3 bench/pytorch/compare_unet_step.py --mode ddim50 --rounds 3 --torch-steps 1
  OMP_NUM_THREADS=2 /usr/bin/python3 bench/pytorch/compare_unet_step.py --mode ancestral1000 --rounds 1 --torch-steps 1

Each round runs our benchmark and PyTorch's (bench_unet_step.py) as separate processes,
back to back, alternating which goes first, so the machine's clock drift cancels within a
round; the summary is the median of the per-round ratios with their range. Ours:
train: build/bench/bench_unet_step, training_step/batch:B/micro_batches:1 (the step of
`ddpm train`), with its minor page faults per step and peak RSS; sample:
build/bench/bench_sampling, an ancestral step (one model call, the update, its noise);
ddim50: bench_sampling's ddim_50_run, 64 images by DDIM in 50 steps, end to end;
ancestral1000: its ancestral_1000_run, 64 images through all 1000 ancestral steps.
PyTorch's figure is the median of --torch-steps timed steps after two warm-up steps;
peak RSS is each process's own. With --baseline DIR, a second build's benchmarks
(DIR/bench_unet_step, DIR/bench_sampling) run in the same rounds: before / after figures.
"""
import argparse
import json
import os
import statistics
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")


def ours(binary_dir, mode, batch, seconds):
    """(milliseconds per step, extra counters) from one run of our benchmark."""
    if mode == "train":
        binary, name = "bench_unet_step", f"training_step/batch:{batch}/micro_batches:1/"
    elif mode == "sample":
        binary, name = "bench_sampling", f"ancestral_step/{batch}"
    elif mode == "ddim50":
        binary, name = "bench_sampling", f"ddim_50_run/{batch}/"
    else:
        binary, name = "bench_sampling", f"ancestral_1000_run/{batch}/"
    command = [os.path.join(binary_dir, binary), f"--benchmark_filter=^{name}",
               f"--benchmark_min_time={seconds}", "--benchmark_format=json"]
    report = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    rows = report["benchmarks"]
    if len(rows) != 1:
        raise SystemExit(f"{command[0]}: expected one row for {name}, got {len(rows)}")
    row = rows[0]
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[row["time_unit"]]
    milliseconds = row["step_ms"] if mode == "sample" else row["real_time"] * scale
    counters = {key: row[key] for key in ("minor_faults_per_step", "peak_rss_MiB") if key in row}
    return milliseconds, counters


def torch_step(mode, batch, threads, steps):
    # A DDIM run is timed cold, as ours is (one run per round, first calls included).
    warmup = ["--warmup", "0"] if mode in ("ddim50", "ancestral1000") else []
    command = ["/usr/bin/python3", os.path.join(HERE, "bench_unet_step.py"), "--mode", mode, "--batch", str(batch),
               "--threads", str(threads), "--steps", str(steps), "--json"] + warmup
    environment = dict(os.environ, OMP_NUM_THREADS=str(threads))
    result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True, env=environment).stdout)
    return result["median_ms"], {"peak_rss_MiB": result["peak_rss_MiB"]}


def summary(label, values):
    values = sorted(values)
    return f"{label}: median {statistics.median(values):.3f} (range {values[0]:.3f}-{values[-1]:.3f})"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["train", "sample", "ddim50", "ancestral1000"], required=True)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="our benchmark's minimum time per round")
    parser.add_argument("--torch-steps", type=int, default=5)
    parser.add_argument("--build", default=os.path.join(ROOT, "build", "bench"), help="directory of our benchmarks")
    parser.add_argument("--baseline", help="directory of another build's benchmarks, timed in the same rounds")
    args = parser.parse_args()

    sides = {"ours": lambda: ours(args.build, args.mode, args.batch, args.seconds),
             "torch": lambda: torch_step(args.mode, args.batch, args.threads, args.torch_steps)}
    if args.baseline:
        sides["baseline"] = lambda: ours(args.baseline, args.mode, args.batch, args.seconds)
    names = list(sides)
    results = {name: [] for name in names}
    for round_index in range(args.rounds):
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            results[name].append(sides[name]())
        line = ", ".join(f"{name} {results[name][-1][0]:.1f} ms {results[name][-1][1]}" for name in names)
        print(f"round {round_index + 1}: {line}", flush=True)

    step = {"train": "training step", "sample": "ancestral sampling step", "ddim50": "DDIM 50-step run",
            "ancestral1000": "ancestral 1000-step run"}[args.mode]
    print(f"{step}, batch {args.batch}, {args.threads} threads, {args.rounds} rounds")
    for name in names:
        times = [milliseconds for milliseconds, _ in results[name]]
        print("  " + summary(f"{name} ms", times))
    ratios = [o[0] / t[0] for o, t in zip(results["ours"], results["torch"])]
    print("  " + summary("ours / torch time", ratios))
    if args.baseline:
        print("  " + summary("ours / baseline time", [o[0] / b[0] for o, b in zip(results["ours"], results["baseline"])]))
        print("  " + summary("baseline / torch time", [b[0] / t[0] for b, t in zip(results["baseline"], results["torch"])]))
    if all("peak_rss_MiB" in counters for _, counters in results["ours"]):
        memory = [o[1]["peak_rss_MiB"] / t[1]["peak_rss_MiB"] for o, t in zip(results["ours"], results["torch"])]
        print("  " + summary("ours / torch peak RSS", memory))
    if all("minor_faults_per_step" in counters for _, counters in results["ours"]):
        print("  " + summary("ours minor faults per step", [o[1]["minor_faults_per_step"] for o in results["ours"]]))


if __name__ == "__main__":
    main()
