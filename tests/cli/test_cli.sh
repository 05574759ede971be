#!/usr/bin/env bash
# End-to-end test of the `ddpm` binary on tiny generated data (8x8 images, a tiny model):
# train -> checkpoint -> resume equivalence -> sample -> info, Ctrl-C, and bad inputs.
# Usage: test_cli.sh PATH/TO/ddpm SCRATCH_DIR
set -uo pipefail
ddpm=$1
work=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
source "$here/expect.sh"

# 16 images of 8x8 (a gradient pattern) and 16 labels in 4 classes, as IDX files.
source "$here/tiny_data.sh"
write_tiny_data 4
head -c 500 images.idx > truncated.idx
{ printf '\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00\x00\x04\x00\x00\x00\x04'; head -c 32 /dev/zero; } > small.idx

tiny=(--ch 8 --ch-mult 1,2 --num-res-blocks 1 --attn 4 --batch 4 --quiet --threads 2)

expect "train" 0 "done: 6 steps" -- "$ddpm" train --data idx:images.idx "${tiny[@]}" --steps 6 --checkpoint-every 3 --out A
for file in A/checkpoint.safetensors A/log.csv A/loss.png; do [[ -s $file ]] && pass || fail "train did not write $file"; done
[[ $(wc -l < A/log.csv) -eq 2 ]] && pass || fail "log.csv should have a header and one line (log every 10, last step 6)"

# Resume equivalence: 3 steps, then resume to 6, gives the same checkpoint bytes.
expect "train 3" 0 "done: 3 steps" -- "$ddpm" train --data idx:images.idx "${tiny[@]}" --steps 3 --out B
expect "resume" 0 "done: 6 steps" -- "$ddpm" train --data idx:images.idx "${tiny[@]}" --steps 6 --resume --out B
cmp -s A/checkpoint.safetensors B/checkpoint.safetensors && pass || fail "resumed checkpoint differs from the uninterrupted one"

# Class-conditional training and guided sampling.
expect "train conditional" 0 "done: 2 steps" -- "$ddpm" train --data idx:images.idx,labels.idx --class-cond "${tiny[@]}" --steps 2 --out C
expect "sample guided" 0 "wrote 3 samples" -- "$ddpm" sample --checkpoint C/checkpoint.safetensors --n 3 --steps 3 --class 2 --guidance 1.5 --out guided.png --quiet

# The bound and hybrid losses: hybrid learns the variance, which sample and eval then use.
expect "train hybrid" 0 "done: 3 steps" -- "$ddpm" train --data idx:images.idx "${tiny[@]}" --steps 3 --loss hybrid --out H
expect "info hybrid" 0 '"learn_sigma":true' -- "$ddpm" info H/checkpoint.safetensors
[[ $(head -1 H/log.csv) == *",mse,vb,fid,kid" && $(tail -1 H/log.csv | awk -F, '{print $11}') != "" ]] && pass || fail "hybrid log.csv lacks the vb column"
expect "sample learned" 0 "wrote 2 samples" -- "$ddpm" sample --checkpoint H/checkpoint.safetensors --n 2 --steps 3 --out h.png --quiet
expect "eval learned" 0 "learned variance" -- "$ddpm" eval --checkpoint H/checkpoint.safetensors --data idx:images.idx --n-images 2 --quiet
expect "train predicting v" 0 "done: 2 steps" -- "$ddpm" train --data idx:images.idx "${tiny[@]}" --steps 2 --predict v --out PV
expect "info names the target" 0 "predict *v" -- "$ddpm" info PV/checkpoint.safetensors
expect "sample a v model" 0 "wrote 2 samples" -- "$ddpm" sample --checkpoint PV/checkpoint.safetensors --n 2 --steps 3 --out pv.png --quiet
expect "eval a v model" 0 "bits/dim on 2" -- "$ddpm" eval --checkpoint PV/checkpoint.safetensors --data idx:images.idx --n-images 2 --quiet
expect "resume cannot change the target" 1 "--predict" -- "$ddpm" train --data idx:images.idx "${tiny[@]}" --steps 3 --predict x0 --resume --out PV
expect "unknown target" 105 "--predict" -- "$ddpm" train --data idx:images.idx --predict noise --out PV2
expect "train vlb" 0 "done: 2 steps" -- "$ddpm" train --data idx:images.idx "${tiny[@]}" --steps 2 --loss vlb --out V
expect "resume keeps the loss" 0 "done: 3 steps" -- "$ddpm" train --data idx:images.idx "${tiny[@]}" --steps 3 --resume --out V
[[ $(tail -1 V/log.csv | awk -F, '{print $1, ($11 != "")}') == "3 1" ]] && pass || fail "the resumed vlb run did not log its bound"
expect "bad loss" 105 "--loss" -- "$ddpm" train --data idx:images.idx --loss kl --out V2
expect "learned variance of a fixed model" 1 "learned variance" -- "$ddpm" sample --checkpoint V/checkpoint.safetensors --variance learned --n 1 --steps 2 --out v.png --quiet

expect "sample" 0 "wrote 5 samples" -- "$ddpm" sample --checkpoint A/checkpoint.safetensors --n 5 --batch 2 --sampler ddim --steps 4 \
  --out samples.png --trajectory trajectory.png --raw raw.safetensors --quiet
for file in samples.png trajectory.png raw.safetensors; do [[ -s $file ]] && pass || fail "sample did not write $file"; done
[[ $(head -c 8 samples.png | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] && pass || fail "samples.png is not a PNG"
expect "sample raw idx" 0 "wrote 2 samples" -- "$ddpm" sample --checkpoint A/checkpoint.safetensors --n 2 --steps 2 --no-ema --raw raw.idx --out s2.png --quiet
[[ $(stat -c %s raw.idx) -eq $((16 + 2 * 64)) ]] && pass || fail "raw.idx has the wrong size"
# A folder of PNGs as data: single-image grids written by `ddpm sample` (square, one size).
mkdir -p pngs mixed
for seed in 1 2 3 4; do "$ddpm" sample --checkpoint A/checkpoint.safetensors --n 1 --steps 2 --seed $seed --out pngs/$seed.png --quiet 2>/dev/null; done
# (the grids are 12x12, so the resolutions are 12 and 6: attention at 6)
expect "train on a PNG folder" 0 "done: 2 steps" -- "$ddpm" train --data folder:pngs --ch 8 --ch-mult 1,2 --num-res-blocks 1 --attn 6 --batch 4 --quiet --threads 2 --steps 2 --out P
expect "eval on a PNG folder" 0 "bits/dim on 2" -- "$ddpm" eval --checkpoint P/checkpoint.safetensors --n-images 2 --quiet
cp pngs/1.png mixed/ && "$ddpm" sample --checkpoint A/checkpoint.safetensors --n 4 --steps 2 --out mixed/four.png --quiet 2>/dev/null
expect "PNG folder of mixed sizes" 1 "all images must have one size" -- "$ddpm" train --data folder:mixed "${tiny[@]}" --steps 1 --out P2
mkdir -p nothing
expect "empty PNG folder" 1 "no .png files" -- "$ddpm" train --data folder:nothing "${tiny[@]}" --steps 1 --out P3

# The same seed gives the same images whatever the batch split.
"$ddpm" sample --checkpoint A/checkpoint.safetensors --n 4 --batch 4 --steps 3 --raw split1.safetensors --out x.png --quiet 2>/dev/null
"$ddpm" sample --checkpoint A/checkpoint.safetensors --n 4 --batch 1 --steps 3 --raw split2.safetensors --out x.png --quiet 2>/dev/null
cmp -s split1.safetensors split2.safetensors && pass || fail "samples depend on the batch split"

expect "eval" 0 "bits/dim on 4 test images" -- "$ddpm" eval --checkpoint A/checkpoint.safetensors --data idx:images.idx --n-images 4 --batch 2 --json eval.json --quiet
grep -q '"total_bits_per_dim"' eval.json && pass || fail "eval.json lacks the total"
expect "eval on other data" 1 "expects 8" -- "$ddpm" eval --checkpoint A/checkpoint.safetensors --data idx:small.idx --quiet
expect "info" 0 "step        6" -- "$ddpm" info A/checkpoint.safetensors

# Ctrl-C finishes the step, saves and exits cleanly.
"$ddpm" train --data idx:images.idx "${tiny[@]}" --steps 100000 --log-every 1 --out D > D.log 2>&1 &
pid=$!
for ((i = 0; i < 200; i++)); do [[ -s D/log.csv && $(wc -l < D/log.csv) -ge 3 ]] && break; sleep 0.1; done
kill -INT $pid
wait $pid
status=$?
[[ $status -eq 0 ]] && grep -q "interrupted: checkpoint at step" D.log && [[ -s D/checkpoint.safetensors ]] && pass \
  || fail "SIGINT: exit $status, log: $(cat D.log)"

# Bad inputs: one clear line, a non-zero exit, nothing saved is damaged.
expect "missing data" 1 "cannot open" -- "$ddpm" train --data idx:missing.idx "${tiny[@]}" --steps 1 --out E
expect "truncated data" 1 "truncated" -- "$ddpm" train --data idx:truncated.idx "${tiny[@]}" --steps 1 --out E
expect "unknown option" 109 "--bogus" -- "$ddpm" train --bogus
expect "bad value" 105 "--batch" -- "$ddpm" train --batch 0
expect "bad list" 2 "--ch-mult" -- "$ddpm" train --ch-mult 1,x --out E
expect "unwritable output" 1 "cannot create the output directory" -- "$ddpm" train --data idx:images.idx "${tiny[@]}" --steps 1 --out /proc/ddpm-test
expect "resume without checkpoint" 1 "no checkpoint" -- "$ddpm" train --data idx:images.idx "${tiny[@]}" --resume --out F
cp A/checkpoint.safetensors good.safetensors
head -c 3000 A/checkpoint.safetensors > truncated.safetensors
expect "truncated checkpoint" 1 "truncated.safetensors" -- "$ddpm" sample --checkpoint truncated.safetensors --out z.png
expect "missing checkpoint" 1 "cannot open" -- "$ddpm" sample --checkpoint nothing.safetensors --out z.png
expect "class of unconditional model" 1 "--class 3" -- "$ddpm" sample --checkpoint A/checkpoint.safetensors --class 3 --out z.png
# A disk that fills (a file-size limit below the checkpoint's size): one error line, and
# the checkpoint already there is untouched.
cp -r A G
expect "disk full" 1 "write failed" -- bash -c "ulimit -f 300; exec \"$ddpm\" train --data idx:images.idx ${tiny[*]} --steps 8 --resume --out G"
cmp -s G/checkpoint.safetensors good.safetensors && pass || fail "a failed checkpoint write damaged the previous checkpoint"
[[ -z $(ls G | grep '\.tmp\.') ]] && pass || fail "a failed checkpoint write left its temporary file"

# Resuming a run on data of another size is refused and leaves the checkpoint as it was.
expect "resume on other data" 1 "expects 8" -- "$ddpm" train --data idx:small.idx "${tiny[@]}" --steps 8 --resume --out A
cmp -s A/checkpoint.safetensors good.safetensors && pass || fail "a refused resume changed the checkpoint"

# Reliability: what a hostile user tried (issue 16), each once.
expect "lr nan" 105 "--lr" -- "$ddpm" train --data idx:images.idx "${tiny[@]}" --lr nan --out N1
expect "clip nan" 105 "--clip" -- "$ddpm" train --data idx:images.idx "${tiny[@]}" --clip nan --out N1
expect "clip range is readable" 105 "not a finite number in \[1e-12, 1e+06\]" -- "$ddpm" train --data idx:images.idx --clip -1 --out N1
expect "seed -1" 105 "not an integer in \[0, 18446744073709551615\]" -- "$ddpm" train --data idx:images.idx "${tiny[@]}" --seed -1 --out N1
expect "seed 2^64" 105 "seed" -- "$ddpm" sample --checkpoint A/checkpoint.safetensors --seed 18446744073709551616 --out s.png
expect "attn 99" 1 "attention resolution 99 is not one of the model's resolutions" -- "$ddpm" train --data idx:images.idx --ch 8 --ch-mult 1,2 --attn 99 --batch 4 --steps 1 --out N2
expect "class -2" 105 "--class" -- "$ddpm" sample --checkpoint A/checkpoint.safetensors --class -2 --out s.png
expect "unknown command" 2 "unknown command 'bogus'" -- "$ddpm" bogus
expect "jpg output" 105 "must end in .png" -- "$ddpm" sample --checkpoint A/checkpoint.safetensors --out x.jpg
expect "info on a directory" 1 "not a regular file" -- "$ddpm" info A
mkfifo fifo.safetensors
expect "info on a FIFO" 1 "not a regular file" -- timeout 10 "$ddpm" info fifo.safetensors
expect "eval json on a full disk" 1 "write failed" -- bash -c "ulimit -f 0; exec \"$ddpm\" eval --checkpoint A/checkpoint.safetensors --data idx:images.idx --n-images 1 --quiet --json full.json"
[[ ! -e full.json ]] && pass || fail "a failed JSON write left a file"
expect "batch past the data" 1 "larger than the data set (16 images" -- "$ddpm" train --data idx:images.idx --ch 8 --ch-mult 1,2 --attn 4 --batch 65536 --out N3
expect "batch past memory" 1 "would need about" -- "$ddpm" train --data fashion-mnist --ch 1024 --batch 60000 --out N3
mkdir -p CD/checkpoint.safetensors
expect "checkpoint path is a directory" 1 "exists and is not a regular file" -- "$ddpm" train --data idx:images.idx "${tiny[@]}" --steps 1 --out CD
expect "existing run" 1 "already holds a run" -- "$ddpm" train --data idx:images.idx "${tiny[@]}" --steps 2 --out A
expect "resume conflict" 1 "--lr 0.10000000000000001 (checkpoint: 0.00020000000000000001)" -- "$ddpm" train --data idx:images.idx "${tiny[@]}" --lr 0.1 --steps 8 --resume --out A
cmp -s A/checkpoint.safetensors good.safetensors && pass || fail "a refused run changed the checkpoint"
# A second run into a directory in use fails at once, naming the process.
cp -r A L && rm -f L/.lock
"$ddpm" train --data idx:images.idx "${tiny[@]}" --steps 100000 --resume --out L > /dev/null 2>&1 &
holder=$!
for ((i = 0; i < 100; i++)); do [[ $(cat L/.lock 2> /dev/null) == "$holder" ]] && break; sleep 0.1; done
expect "locked directory" 1 "another training run is using this directory (process $holder)" -- "$ddpm" train --data idx:images.idx "${tiny[@]}" --steps 100 --resume --out L
kill -TERM $holder; wait $holder
# After a kill: log rows past the checkpoint and temporary files are cleaned up on resume.
cp -r A K
printf '7,9,9,9,9,,,,,9,\n8,9,9,9,9,,,,,9,\n3,0.12' >> K/log.csv  # two rows past the checkpoint, one torn
touch K/checkpoint.safetensors.tmp.99999 K/loss.png.tmp.99999
expect "resume after a kill" 0 "done: 7 steps" -- "$ddpm" train --data idx:images.idx "${tiny[@]}" --steps 7 --resume --log-every 1 --out K
[[ $(cut -d, -f1 K/log.csv | sort | uniq -d | wc -l) -eq 0 && $(tail -1 K/log.csv | cut -d, -f1) == 7 ]] && pass || fail "log.csv repeats steps after a resume: $(cut -d, -f1 K/log.csv | tr '\n' ' ')"
! grep -q '^3,0.12' K/log.csv && pass || fail "a torn log row survived the resume"
[[ -z $(ls K | grep '\.tmp\.') ]] && pass || fail "stale temporary files were not removed: $(ls K)"

# Which code paths run: the build's instruction set and the GEMM kernel in use, which
# DDPM_GEMM_KERNEL forces; a kernel this CPU lacks is an error, never another kernel.
expect "info system" 0 "gemm     sse2, 6 x 8 tile (available: .*sse2)" -- env DDPM_GEMM_KERNEL=sse2 "$ddpm" info --system
expect "version" 0 "^build " -- "$ddpm" --version
expect "unknown kernel" 1 "kernel 'vax' is not available on this CPU" -- env DDPM_GEMM_KERNEL=vax "$ddpm" info --system
# ... and the Winograd tile of the 3x3 convolutions, 4 unless DDPM_WINOGRAD_TILE says 2.
expect "winograd tile" 0 "winograd F(4x4, 3x3)" -- env -u DDPM_WINOGRAD_TILE "$ddpm" info --system
expect "winograd tile 2" 0 "winograd F(2x2, 3x3)" -- env DDPM_WINOGRAD_TILE=2 "$ddpm" info --system
expect "bad winograd tile" 1 "DDPM_WINOGRAD_TILE: the Winograd output tile must be 2 or 4, got '3'" -- env DDPM_WINOGRAD_TILE=3 "$ddpm" info --system
expect "info without a file" 2 "give a checkpoint file" -- "$ddpm" info

# The feature classifier names data it cannot take and weights it cannot read.
expect "classifier on 8x8 images" 1 "28 x 28 gray images" -- "$ddpm" classifier train --data idx:images.idx,labels.idx --weights cls.safetensors --quiet
[[ ! -e cls.safetensors ]] && pass || fail "a failed classifier run left a weights file"
expect "classifier test without weights" 1 "missing.safetensors" -- "$ddpm" classifier test --data idx:images.idx,labels.idx --weights missing.safetensors
expect "classifier without a command" 106 "subcommand is required" -- "$ddpm" classifier

# Sample quality (eval --fid) on real 28x28 images cut from Fashion-MNIST's test split: 64
# images measured against 200 others, through the shipped feature network.
fashion=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
cut_idx() {  # cut_idx FIRST COUNT OUT: images FIRST..FIRST+COUNT-1 of the test split as IDX
  { printf '\x00\x00\x08\x03'; printf "\\x$(printf %02x $(($2 >> 24 & 255)))\\x$(printf %02x $(($2 >> 16 & 255)))\\x$(printf %02x $(($2 >> 8 & 255)))\\x$(printf %02x $(($2 & 255)))";
    printf '\x00\x00\x00\x1c\x00\x00\x00\x1c'; zcat $fashion | tail -c +$((17 + $1 * 784)) | head -c $(($2 * 784)); } > "$3"
}
cut_idx 0 64 real64.idx
cut_idx 1000 200 reference200.idx
expect "fid on IDX images" 0 "precision (k=3)" -- "$ddpm" eval --fid --images real64.idx --data idx:reference200.idx --no-memorisation --json fid.json --quiet
grep -q '"fingerprint": "d448adc6b4e7af56"' fid.json && pass || fail "fid.json does not name the shipped feature network: $(cat fid.json)"
grep -q '"fid"' fid.json && grep -q '"kid"' fid.json && grep -q '"class_entropy_bits"' fid.json && pass || fail "fid.json lacks a metric"
expect "same data as both splits" 0 "not measured" -- "$ddpm" eval --fid --images real64.idx --data idx:reference200.idx --quiet
expect "fid on 8x8 images" 1 "28 x 28 gray images" -- "$ddpm" eval --fid --images images.idx --data idx:reference200.idx --quiet
expect "info on the feature network" 0 "fingerprint *d448adc6b4e7af56" -- "$ddpm" info "$here/../../models/fashion-mnist-classifier.safetensors"
expect "fid of a PNG folder of other sizes" 1 "got \[4, 1, 12, 12\]" -- "$ddpm" eval --fid --images pngs --data idx:reference200.idx --quiet
expect "fid of nothing" 1 "either --checkpoint" -- "$ddpm" eval --fid --quiet
expect "fid of a missing file" 1 "missing.safetensors" -- "$ddpm" eval --fid --images missing.safetensors --quiet
expect "fid without a feature network" 1 "nothere.safetensors" -- "$ddpm" eval --fid --images real64.idx --classifier nothere.safetensors --quiet
expect "fid with other weights" 1 "not the feature classifier" -- "$ddpm" eval --fid --images real64.idx --classifier A/checkpoint.safetensors --quiet
# From a checkpoint: a tiny 28x28 model's samples, the same numbers whatever the batch.
expect "train 28x28" 0 "done: 2 steps" -- "$ddpm" train --data idx:real64.idx --ch 8 --ch-mult 1,2 --num-res-blocks 1 --attn 14 --batch 4 --steps 2 --quiet --threads 2 --out Q
expect "fid of a checkpoint" 0 "FID" -- "$ddpm" eval --fid --checkpoint Q/checkpoint.safetensors --data idx:reference200.idx --n-samples 6 --steps 3 --batch 6 --no-memorisation --json q1.json --quiet
"$ddpm" eval --fid --checkpoint Q/checkpoint.safetensors --data idx:reference200.idx --n-samples 6 --steps 3 --batch 4 --no-memorisation --json q2.json --quiet > /dev/null 2>&1
cmp -s q1.json q2.json && pass || fail "eval --fid depends on the sampling batch: $(diff q1.json q2.json)"
# FID during training: logged at every --fid-every steps, in its own columns of log.csv.
expect "train with FID" 0 "step 2: FID" -- "$ddpm" train --data idx:real64.idx --ch 8 --ch-mult 1,2 --num-res-blocks 1 --attn 14 --batch 4 --steps 4 --log-every 3 --fid-every 2 --fid-samples 8 --fid-steps 2 --threads 2 --out FQ
[[ $(head -1 FQ/log.csv) == *,fid,kid ]] && pass || fail "log.csv lacks the fid and kid columns: $(head -1 FQ/log.csv)"
[[ $(awk -F, 'NR > 1 && $12 != "" {print $1}' FQ/log.csv | tr '\n' ' ') == "2 4 " ]] && pass || fail "FID not logged at steps 2 and 4: $(cat FQ/log.csv)"
expect "FID of 8x8 images" 1 "28 x 28 gray images" -- "$ddpm" train --data idx:images.idx "${tiny[@]}" --steps 2 --fid-every 1 --out FQ2
"$ddpm" sample --checkpoint Q/checkpoint.safetensors --n 6 --steps 3 --sampler ddim --raw q.safetensors --out q.png --quiet 2>/dev/null
expect "fid on raw samples" 0 "FID" -- "$ddpm" eval --fid --images q.safetensors --data idx:reference200.idx --no-memorisation --json q3.json --quiet
grep '"fid"' q1.json | cmp -s - <(grep '"fid"' q3.json) && pass || fail "eval --fid of a checkpoint and of its raw samples differ"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
