#!/usr/bin/env bash
# Seeds both fuzz corpora with the golden models.
set -e
cd "$(dirname "$0")"
for target in load_and_run load_and_run_sealed; do
    mkdir -p "corpus/$target"
    cp ../tests/golden/*.ember "corpus/$target/"
done
