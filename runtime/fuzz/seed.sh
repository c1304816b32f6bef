#!/usr/bin/env bash
# Seeds the fuzz corpus with the golden models.
set -e
cd "$(dirname "$0")"
mkdir -p corpus/load_and_run
cp ../tests/golden/*.ember corpus/load_and_run/
