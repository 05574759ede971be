#!/usr/bin/env bash
# A checkpoint written by `ddpm train` loads into our PyTorch module
# (interop/pytorch/ddpm_unet.py) and computes the same output: a tiny model with every
# feature (attention, class labels, learned variance, a channel change) trained for a few
# steps, so no weight is at its initial zero. Skipped (exit 77) without torch.
# Usage: round_trip.sh DDPM FORWARD_OUTPUT SOURCE_DIR SCRATCH_DIR
set -euo pipefail
ddpm=$1 forward_output=$2 source=$3 work=$4
if ! /usr/bin/python3 -c "import torch" 2> /dev/null; then
  echo "skipped: /usr/bin/python3 has no torch (DDPM_WITH_PYTORCH=1 scripts/install-dependencies.sh installs it)"
  exit 77
fi
source "$source/tests/cli/tiny_data.sh"
rm -rf "$work" && mkdir -p "$work" && cd "$work"
write_tiny_data 3
"$ddpm" train --data idx:images.idx,labels.idx --class-cond --loss hybrid --ch 16 --ch-mult 1,2 --num-res-blocks 1 \
  --attn 4 --batch 4 --steps 5 --lr 1e-3 --ema 0.5 --quiet --out run
"$forward_output" run/checkpoint.safetensors forward.safetensors
/usr/bin/python3 "$source/interop/pytorch/check_checkpoint.py" run/checkpoint.safetensors forward.safetensors
