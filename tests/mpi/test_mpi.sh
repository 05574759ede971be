#!/usr/bin/env bash
# `ddpm` under mpirun on tiny generated data: training with 1, 2 and 4 processes writes the
# checkpoint bytes one process writes with the same --micro-batches, a resume may use another
# process count, sampling and evaluation give one process's images and figures, a process
# count the reduction tree cannot take is a clear error, a killed rank ends the job within
# seconds with the last checkpoint intact, and Ctrl-C saves one checkpoint.
# Usage: test_mpi.sh PATH/TO/ddpm SCRATCH_DIR. Exit 77 (skipped): no mpirun, or no MPI built in.
set -uo pipefail
ddpm=$(realpath "$1")
work=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
command -v mpirun > /dev/null || { echo "mpirun not found: skipped"; exit 77; }
"$ddpm" --version | grep -q "MPI: built in" || { echo "ddpm built without MPI: skipped"; exit 77; }
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
# Root in CI containers; two cores for up to four ranks.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi() { local n=$1; shift; timeout 120 mpirun --oversubscribe -np "$n" "$@"; }
source "$here/../cli/expect.sh"
same_file() { cmp -s "$1" "$2" && pass || fail "$3: $1 and $2 differ"; }
without_seconds() { cut -d, -f1-4,6- "$1"; }  # log.csv without its wall-clock column

source "$here/../cli/tiny_data.sh"
write_tiny_data 4
# Class-conditional, hybrid loss, dropout: every random draw of a step is exercised.
base=(--data idx:images.idx,labels.idx --class-cond --loss hybrid --dropout 0.2 --ch 8 --ch-mult 1,2
      --num-res-blocks 1 --attn 4 --batch 8 --threads 1 --log-every 2)
tiny=("${base[@]}" --micro-batches 4 --quiet)

expect "one process" 0 "done: 4 steps" -- "$ddpm" train "${tiny[@]}" --steps 4 --out single
for n in 1 2 4; do
  expect "mpirun -np $n" 0 "done: 4 steps" -- mpi "$n" "$ddpm" train "${tiny[@]}" --steps 4 --out np$n
  same_file single/checkpoint.safetensors np$n/checkpoint.safetensors "-np $n checkpoint"
  diff -q <(without_seconds single/log.csv) <(without_seconds np$n/log.csv) > /dev/null && pass || fail "-np $n log differs"
done
[[ $(ls np4) == "$(ls single)" ]] && pass || fail "-np 4 wrote other files than one process: $(ls np4)"

expect "-np 3 cannot share 4 micro-batches" 1 "3 processes cannot share 4 micro-batches" -- \
  mpi 3 "$ddpm" train "${tiny[@]}" --steps 1 --out bad
expect "--batch not a multiple of --micro-batches" 1 "not a multiple of --micro-batches 3" -- \
  "$ddpm" train "${base[@]}" --micro-batches 3 --steps 1 --out bad2

# Resume with another process count: the same bytes as the run never interrupted.
expect "2 steps on 2 processes" 0 "done: 2 steps" -- mpi 2 "$ddpm" train "${tiny[@]}" --steps 2 --out resumed
expect "resume on 4 processes" 0 "done: 4 steps" -- mpi 4 "$ddpm" train "${tiny[@]}" --steps 4 --resume --out resumed
same_file single/checkpoint.safetensors resumed/checkpoint.safetensors "resume with another -np"

sample=(--checkpoint single/checkpoint.safetensors --n 5 --batch 2 --steps 3 --class 1 --guidance 1 --quiet)
expect "sample, one process" 0 "wrote 5 samples" -- "$ddpm" sample "${sample[@]}" --out one.png --raw one.safetensors
expect "sample, -np 2" 0 "wrote 5 samples" -- mpi 2 "$ddpm" sample "${sample[@]}" --out two.png --raw two.safetensors
cmp -s <(tail -c +200 one.safetensors) <(tail -c +200 two.safetensors) && pass || fail "-np 2 samples differ"
same_file one.png two.png "sample grid"

evaluation=(--checkpoint single/checkpoint.safetensors --data idx:images.idx --split train --n-images 5 --batch 2 --quiet)
"$ddpm" eval "${evaluation[@]}" > eval-one.txt 2>&1 && pass || fail "eval, one process: $(cat eval-one.txt)"
mpi 2 "$ddpm" eval "${evaluation[@]}" > eval-two.txt 2>&1 && pass || fail "eval, -np 2: $(cat eval-two.txt)"
same_file eval-one.txt eval-two.txt "eval report"

# A rank killed with SIGKILL: mpirun ends the job within seconds; the checkpoint stays whole.
long=("${tiny[@]}" --steps 1000000 --checkpoint-every 20)
mpi 2 "$ddpm" train "${long[@]}" --out killed > killed.log 2>&1 &
job=$!
for _ in $(seq 1 100); do [[ -s killed/checkpoint.safetensors ]] && break; sleep 0.2; done
rank_one=""
for pid in $(pgrep -f -- "--out killed"); do
  tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1" && rank_one=$pid
done
if [[ -z $rank_one ]]; then
  fail "could not find rank 1 of the training job"
  kill -9 "$job"
else
  kill -9 "$rank_one"
  started=$SECONDS
  wait "$job"
  status=$?
  [[ $status -ne 0 ]] && pass || fail "mpirun exited 0 after a rank was killed"
  (( SECONDS - started <= 10 )) && pass || fail "the job took $((SECONDS - started)) s to end after a rank died"
  grep -q "rank 1" killed.log && pass || fail "mpirun's report does not name rank 1: $(cat killed.log)"
  expect "the last checkpoint is intact" 0 "step" -- "$ddpm" info killed/checkpoint.safetensors
fi

# Ctrl-C on mpirun: every rank stops at the same step and rank 0 saves it.
# (mpirun itself in the background, not through a shell function, so that it gets the signal)
mpirun --oversubscribe -np 2 "$ddpm" train "${base[@]}" --micro-batches 4 --steps 1000000 --checkpoint-every 1000000 \
  --out interrupted > interrupted.log 2>&1 &
job=$!
for _ in $(seq 1 100); do grep -q "step 20/" interrupted.log 2>/dev/null && break; sleep 0.2; done
kill -INT "$job"
started=$SECONDS
wait "$job"
(( SECONDS - started <= 10 )) && pass || fail "Ctrl-C: the job took $((SECONDS - started)) s to stop"
grep -q "interrupted: checkpoint at step" interrupted.log && pass || fail "Ctrl-C: no checkpoint message: $(tail -c 400 interrupted.log)"
expect "the interrupted run resumes" 0 "done:" -- mpi 2 "$ddpm" train "${tiny[@]}" --steps 40 --resume --out interrupted

echo "mpi tests: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
