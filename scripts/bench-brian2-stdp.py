#!/usr/bin/env python3
"""Training speed of a Diehl & Cook STDP network in Brian2, for the side-by-side figure of
BENCHMARKS.md (issue 7: `ember stdp` against a Python simulator on the same cores).

The network is the one of Diehl & Cook (2015), as their published Brian code defines it:
784 Poisson inputs (rate = pixel / 4 Hz), N conductance-based excitatory LIF neurons with
adaptive thresholds, N inhibitory neurons (one per excitatory neuron, each inhibiting all
excitatory neurons but its partner), input-to-excitatory synapses learning with
trace-based STDP, weight normalisation after every image, dt = 0.5 ms, 350 ms per image
and 150 ms of rest. `--steps-like-ember` runs the same network for ember's presentation
instead: 48 steps of 1 ms and no rest (state reset between images), the same number of
steps per image as `ember stdp`.

Set-up (PyPI; Brian2 2.9 needs NumPy 1.x):

    python3 -m venv /tmp/b2env && /tmp/b2env/bin/pip install brian2 "numpy<2"
    /tmp/b2env/bin/python scripts/bench-brian2-stdp.py --data ../shared/data/mnist --images 100

Prints images per second (after the code generation and a warm-up image) and the time one
epoch of 60,000 images would take at that speed. Brian2's default code generation target
(Cython, compiled once and cached) runs on one core.
"""

import argparse
import gzip
import os
import struct
import time

import numpy as np


def load_images(data, n):
    """The first n MNIST training images as float arrays of 784 pixels."""
    for name in ("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"):
        path = os.path.join(data, name)
        if os.path.exists(path):
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rb") as f:
                _, count, rows, cols = struct.unpack(">IIII", f.read(16))
                n = min(n, count)
                raw = np.frombuffer(f.read(n * rows * cols), dtype=np.uint8)
            return raw.reshape(n, rows * cols).astype(float)
    raise SystemExit(f"{data}: no train-images-idx3-ubyte[.gz] (the MNIST folder)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="MNIST directory")
    ap.add_argument("--images", type=int, default=100, help="timed training images")
    ap.add_argument("--neurons", type=int, default=400)
    ap.add_argument("--steps-like-ember", action="store_true",
                    help="48 steps of 1 ms per image, no rest (ember's presentation)")
    args = ap.parse_args()

    import brian2 as b
    from brian2 import ms, mV, Hz

    b.prefs.codegen.target = "cython"
    images = load_images(args.data, args.images + 1)
    n_in, n = 784, args.neurons
    if args.steps_like_ember:
        b.defaultclock.dt = 1 * ms
        present, rest = 48 * ms, 0 * ms
    else:
        b.defaultclock.dt = 0.5 * ms
        present, rest = 350 * ms, 150 * ms

    # Diehl & Cook's excitatory and inhibitory neurons.
    exc = b.NeuronGroup(
        n,
        """
        dv/dt = ((-65*mV - v) + ge*(-v) + gi*(-100*mV - v)) / (100*ms) : volt (unless refractory)
        dge/dt = -ge / (1*ms) : 1
        dgi/dt = -gi / (2*ms) : 1
        dtheta/dt = -theta / (1e7*ms) : volt
        """,
        threshold="v > (theta - 20*mV - 52*mV)",
        reset="v = -65*mV; theta += 0.05*mV",
        refractory=5 * ms,
        method="euler",
    )
    inh = b.NeuronGroup(
        n,
        """
        dv/dt = ((-60*mV - v) + ge*(-v) + gi*(-85*mV - v)) / (10*ms) : volt (unless refractory)
        dge/dt = -ge / (1*ms) : 1
        dgi/dt = -gi / (2*ms) : 1
        """,
        threshold="v > -40*mV",
        reset="v = -45*mV",
        refractory=2 * ms,
        method="euler",
    )
    exc.v, inh.v, exc.theta = -105 * mV, -100 * mV, 20 * mV
    inputs = b.PoissonGroup(n_in, rates=np.zeros(n_in) * Hz)
    learn = b.Synapses(
        inputs,
        exc,
        """
        w : 1
        post2before : 1
        dpre/dt = -pre / (20*ms) : 1 (event-driven)
        dpost1/dt = -post1 / (20*ms) : 1 (event-driven)
        dpost2/dt = -post2 / (40*ms) : 1 (event-driven)
        """,
        on_pre="ge_post += w; pre = 1.; w = clip(w - 0.0001 * post1, 0, 1)",
        on_post="post2before = post2; w = clip(w + 0.01 * pre * post2before, 0, 1); "
        "post1 = 1.; post2 = 1.",
        method="exact",
    )
    learn.connect()
    learn.w = "rand() * 0.3"
    e2i = b.Synapses(exc, inh, on_pre="ge_post += 10.4")
    e2i.connect(j="i")
    i2e = b.Synapses(inh, exc, on_pre="gi_post += 17.0")
    i2e.connect(condition="i != j")
    spikes = b.SpikeMonitor(exc, record=False)
    net = b.Network(exc, inh, inputs, learn, e2i, i2e, spikes)

    def show(image):
        inputs.rates = image / 4.0 * Hz
        net.run(present)
        inputs.rates = np.zeros(n_in) * Hz
        if rest > 0 * ms:
            net.run(rest)
        else:
            exc.v, inh.v = -65 * mV, -60 * mV
            exc.ge = exc.gi = inh.ge = inh.gi = 0
        # Normalise each neuron's incoming weights to sum 78.
        w = np.array(learn.w).reshape(n_in, n)
        w *= 78.0 / np.maximum(w.sum(axis=0), 1e-9)
        learn.w = w.ravel()

    t0 = time.perf_counter()
    show(images[0])  # code generation, compilation and warm-up
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for image in images[1:]:
        show(image)
    seconds = time.perf_counter() - t0
    rate = args.images / seconds
    mode = "48 x 1 ms, no rest" if args.steps_like_ember else "350 ms + 150 ms rest, dt 0.5 ms"
    print(f"Brian2 {b.__version__}, {n} neurons, {mode}: {args.images} images in "
          f"{seconds:.1f} s = {rate:.2f} images/s (first image with code generation: "
          f"{warm:.1f} s); one epoch of 60,000 images: {60000 / rate / 3600:.1f} h; "
          f"{spikes.num_spikes / (args.images + 1):.1f} excitatory spikes per image")


if __name__ == "__main__":
    main()
