#!/usr/bin/env python3
"""Offline study of SNR-weighted evidence fusion for `ember multimodal` (issue 8).

Reads the per-pair class scores that a patched `ember multimodal` writes (one line per test
pair and noise level: level, recording index, digit, the recording's SNR estimate
`Features::hf_snr_db`, then the image-alone, audio-alone and paired scores of both
ensembles and the evidence pseudo-counts) and compares the shipped evidence fusion with one
that weights the audio ensemble's log-evidence by

    w = clamp((hf_snr_db - lo) / (hi - lo), w_min, 1)

Reproduce (docs/results.md, "Multimodal STDP"):

    git worktree add /tmp/wt 9b0b7b8 && cd /tmp/wt
    git apply /path/to/ember/scripts/multimodal-dump-scores.patch
    cargo build --release -p ember-trainer --bin ember
    EMBER_DUMP=/tmp/dump.tsv target/release/ember -q multimodal \\
        --image-data ../shared/data/mnist --audio-data ../shared/data/fsdd --out /tmp/mm/base
    python3 scripts/multimodal-fusion-offline.py /tmp/dump.tsv

The first setting, (4, 12, 0.1), is the one fixed beforehand from training recordings
(`RELIABLE_DB`, `UNRELIABLE_DB`, `RELIABILITY_MIN` in 9b0b7b8); the others show how much
the result depends on it. A level is flagged when the weighted fusion is not above both
unimodal networks there.
"""
import ast
import collections
import math
import sys


def arg_max(v):
    return max(range(10), key=lambda c: v[c])


def log_evidence(scores, k):
    total = sum(scores)
    return [math.log((x + k) / (total + 10 * k)) for x in scores]


def main(path):
    rows = collections.defaultdict(list)
    with open(path) as f:
        for line in f:
            what, a, digit, hf, ia, ib, pa, pb, pr = line.rstrip("\n").split("\t")
            rows[what].append(
                (int(digit), float(hf), ast.literal_eval(ia), ast.literal_eval(ib),
                 ast.literal_eval(pa), ast.literal_eval(pb), ast.literal_eval(pr))
            )
    for lo, hi, w_min in [(4, 12, 0.1), (4, 12, 0.0), (2, 10, 0.1), (4, 16, 0.1), (0, 12, 0.2)]:
        print(f"lo {lo} dB, hi {hi} dB, w_min {w_min}")
        for what, rs in rows.items():
            n = len(rs)
            img = aud = fused = weighted = 0
            for digit, hf, ia, ib, pa, pb, priors in rs:
                img += arg_max(ia) == digit
                aud += arg_max(ib) == digit
                la, lb = log_evidence(pa, priors[0]), log_evidence(pb, priors[1])
                fused += arg_max([x + y for x, y in zip(la, lb)]) == digit
                w = min(1.0, max(w_min, (hf - lo) / (hi - lo)))
                weighted += arg_max([x + w * y for x, y in zip(la, lb)]) == digit
            acc = [100 * v / n for v in (img, aud, fused, weighted)]
            flag = "" if acc[3] > max(acc[0], acc[1]) else "  <-- not above both"
            print("  %-18s image %.2f  audio %.2f  evidence %.2f  weighted %.2f%s" % (what, *acc, flag))


if __name__ == "__main__":
    main(sys.argv[1])
