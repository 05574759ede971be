#!/usr/bin/env bash
# FID and KID of the checkpoints a training run left behind, one line per checkpoint:
#   scripts/fid-against-steps.sh DDPM_BINARY OUT.csv CHECKPOINT... [-- eval options]
# Each checkpoint is sampled with `ddpm eval --fid` (DDIM 50 steps, seed 0 unless the
# options after -- say otherwise) and measured against the test split; the step comes from
# the checkpoint's metadata. Default sample count 256: the curve's points are comparable
# with each other, not with FID at other N (FID is biased upwards at small N; KID is not).
set -euo pipefail
ddpm=$1 out=$2
shift 2
checkpoints=()
while (($#)) && [[ $1 != -- ]]; do checkpoints+=("$1"); shift; done
(($#)) && shift
options=("$@")
[[ " $* " == *" --n-samples "* ]] || options+=(--n-samples 256)
echo "step,fid,kid,kid_standard_error,precision,recall,class_entropy_bits" > "$out.partial"
for checkpoint in "${checkpoints[@]}"; do
  step=$("$ddpm" info "$checkpoint" | awk '/^step /{print $2}')  # awk reads it all: an early exit would fail the pipe
  json=$(mktemp)
  "$ddpm" eval --fid --checkpoint "$checkpoint" --no-memorisation --quiet --json "$json" "${options[@]}" > /dev/null
  value() { sed -n "s/^ *\"$1\": \([^,]*\),\?$/\1/p" "$json" | head -1; }
  echo "$step,$(value fid),$(value estimate),$(value standard_error),$(value precision),$(value recall),$(value class_entropy_bits)" >> "$out.partial"
  rm -f "$json"
  echo "step $step done" >&2
done
sort -t, -k1,1n -o "$out.partial" "$out.partial"  # the header sorts first: it is not a number
mv "$out.partial" "$out"
