#!/usr/bin/env bash
# The pruning x weight-bits table of docs/results.md (issue 6): REF-CONV at T=4, fine-tuned
# from a trained dense ANN with gradual row-balanced pruning and quantization-aware training
# (recipes/ref-conv-pruned.toml without its [diet] section), converted, exported and
# evaluated on the 10,000 MNIST test images; then instructions per inference on
# qemu-mps2-an386 (20 test images, agreement must be 100%).
#
#   scripts/prune-sweep.sh DENSE/checkpoint.safetensors ../shared/data/mnist /tmp/sweep
#
# Writes OUT/s<sparsity>-int<bits>/{model.ember,report.json,hil.json} and prints one line
# per configuration.
set -euo pipefail
ckpt=${1:?dense ANN checkpoint (ember train --recipe recipes/ref-conv-diet.toml)}
data=${2:?MNIST directory}
out=${3:?output directory}
ember=${EMBER:-target/release/ember}
mkdir -p "$out"
# The sweep fine-tunes for 2 epochs (lr 5e-4, final sparsity at 60% of the steps) and skips
# DIET: only the shipped models get 6 epochs and DIET (models/README.md).
sed -e '/^\[diet\]/,$d' -e 's/^epochs = .*/epochs = 2/' -e 's/^lr = .*/lr = 5e-4/' \
    -e 's/^end = .*/end = 0.6/' recipes/ref-conv-pruned.toml > "$out/recipe.toml"
configs=${CONFIGS:-0.5:8 0.8:8 0.9:8 0:4 0.5:4 0.8:4 0.9:4}
for cfg in $configs; do
    s=${cfg%%:*}; b=${cfg##*:}
    dir="$out/s$s-int$b"
    if [ ! -f "$dir/report.json" ]; then
        "$ember" -q train --recipe "$out/recipe.toml" --init "$ckpt" --data "$data" \
            --sparsity "$s" --bits "$b" --out "$dir"
    fi
    if [ ! -f "$dir/hil.json" ]; then
        "$ember" -q hil --board qemu-mps2-an386 --model "$dir/model.ember" --samples 20 --json \
            > "$dir/hil.json"
    fi
    echo "== s=$s bits=$b"
    "$ember" inspect "$dir/model.ember" | tail -1
done
