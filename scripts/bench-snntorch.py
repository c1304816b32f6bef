#!/usr/bin/env python3
"""Training throughput of REF-CONV and REF-MLP in snnTorch, for issue 9's baseline.

The same networks and settings as `ember bench-train` (shared/REFERENCE.md): T = 4,
batch 64, BPTT over all steps, surrogate gradient, Adam lr 1e-3, 2 CPU threads, direct
(analog) input, LIF with soft reset and trained leak and threshold, a non-spiking readout
whose output is summed over the steps; synthetic MNIST-sized data. Samples/s are wall clock
over --batches batches after --warmup batches, as REFERENCE.md's "training throughput".

    python3 -m venv /tmp/tenv && /tmp/tenv/bin/pip install torch snntorch
    /tmp/tenv/bin/python scripts/bench-snntorch.py [--net ref-conv|ref-mlp|both] [--batches 200]

`--per-step-input` computes the first layer's current inside the time loop, as snnTorch's
tutorials write it; by default it is computed once per batch and reused (the faster form,
which `ember bench-train` also uses).
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import snntorch as snn
from snntorch import surrogate

T = 4
BATCH = 64


def lif():
    return snn.Leaky(
        beta=0.95,
        threshold=1.0,
        learn_beta=True,
        learn_threshold=True,
        reset_mechanism="subtract",
        spike_grad=surrogate.fast_sigmoid(slope=25),
    )


class RefConv(nn.Module):
    def __init__(self, per_step_input):
        super().__init__()
        self.per_step_input = per_step_input
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.lif1 = lif()
        self.pool1 = nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
        self.lif2 = lif()
        self.pool2 = nn.AvgPool2d(2)
        self.fc = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        mem2 = self.lif2.init_leaky()
        cur1 = None if self.per_step_input else self.conv1(x)
        out = 0
        for _ in range(T):
            c1 = self.conv1(x) if self.per_step_input else cur1
            spk1, mem1 = self.lif1(c1, mem1)
            cur2 = self.conv2(self.pool1(spk1))
            spk2, mem2 = self.lif2(cur2, mem2)
            out = out + self.fc(self.pool2(spk2).flatten(1))
        return out


class RefMlp(nn.Module):
    def __init__(self, per_step_input):
        super().__init__()
        self.per_step_input = per_step_input
        self.fc1 = nn.Linear(784, 256)
        self.lif1 = lif()
        self.fc2 = nn.Linear(256, 10)

    def forward(self, x):
        x = x.flatten(1)
        mem1 = self.lif1.init_leaky()
        cur1 = None if self.per_step_input else self.fc1(x)
        out = 0
        for _ in range(T):
            c1 = self.fc1(x) if self.per_step_input else cur1
            spk1, mem1 = self.lif1(c1, mem1)
            out = out + self.fc2(spk1)
        return out


def bench(net_name, batches, warmup, per_step_input, seed):
    torch.manual_seed(seed)
    net = (RefConv if net_name == "ref-conv" else RefMlp)(per_step_input)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    n = 16
    xs = [torch.rand(BATCH, 1, 28, 28) for _ in range(n)]
    ys = [torch.randint(0, 10, (BATCH,)) for _ in range(n)]

    def step(i):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(xs[i % n]), ys[i % n])
        loss.backward()
        opt.step()

    for i in range(warmup):
        step(i)
    start = time.perf_counter()
    for i in range(batches):
        step(i)
    secs = time.perf_counter() - start
    return {
        "net": net_name,
        "framework": f"snntorch {snn.__version__}, torch {torch.__version__}",
        "threads": torch.get_num_threads(),
        "per_step_input": per_step_input,
        "batches": batches,
        "train_samples_per_second": round(batches * BATCH / secs, 1),
        "ms_per_step": round(1000 * secs / batches, 2),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--net", choices=["ref-conv", "ref-mlp", "both"], default="both")
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--per-step-input", action="store_true")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    if a.batches < 200:
        print("note: REFERENCE.md's training throughput needs at least 200 batches")
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    nets = ["ref-conv", "ref-mlp"] if a.net == "both" else [a.net]
    for name in nets:
        print(json.dumps(bench(name, a.batches, a.warmup, a.per_step_input, a.seed)), flush=True)


if __name__ == "__main__":
    main()
