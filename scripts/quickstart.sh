#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, then runs the main job:
# trains a small DDPM on Fashion-MNIST for a short budget (about 2.5 minutes on 2 cores)
# and writes runs/quickstart/samples.png and runs/quickstart/loss.png.
# Override the budget with STEPS=... (the README lists the longer recipe). A rerun replaces
# the previous quick-start run (--overwrite).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-dependencies.sh
scripts/build.sh
out=${OUT:-runs/quickstart}
build/tools/ddpm train --data fashion-mnist --ch 16 --batch 32 --steps "${STEPS:-400}" \
  --lr 1e-3 --lr-schedule linear-warmup --warmup 50 --ema 0.995 --checkpoint-every 200 --overwrite --out "$out"
build/tools/ddpm sample --checkpoint "$out/checkpoint.safetensors" --n 36 --sampler ddim --steps 50 \
  --out "$out/samples.png" --trajectory "$out/trajectory.png"
echo "wrote $out/samples.png, $out/trajectory.png and $out/loss.png"
