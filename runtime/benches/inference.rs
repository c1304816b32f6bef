//! Inference cost of the reference networks (../shared/REFERENCE.md) at T=4 with random
//! int8 weights whose thresholds are tuned for realistic spike rates (~5-15% per layer).
//!
//! `cargo bench -p ember-runtime --bench inference`. Throughput is reported in SOPs, so
//! criterion's "elem/s" is synaptic operations per second.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{synaptic, Kind, Rng, L, M};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ember_runtime::format::{Encoding, Precision, Width};
use ember_runtime::{Engine, Model};

/// A 28x28 "zero": a thick ring, about the ink coverage of an MNIST digit.
fn digit() -> Vec<u8> {
    (0..784)
        .map(|i| {
            let (y, x) = ((i / 28) as f32 - 13.5, (i % 28) as f32 - 13.5);
            let r = (y * y / 1.6 + x * x).sqrt();
            if (6.0..9.5).contains(&r) {
                230
            } else {
                0
            }
        })
        .collect()
}

fn layer(rng: &mut Rng, kind: Kind, shape: (usize, usize, usize), readout: bool) -> L {
    let mut l = synaptic(rng, kind, shape, readout);
    l.precision = Precision::I8;
    l.sparse = false;
    l.ell = None;
    l.width = Width::I32;
    l.leak = 1 << 15;
    l.bias = vec![0];
    l.inhibition = None;
    l.w = l.w.iter().map(|_| rng.range(-40, 50) as i32).collect();
    l
}

/// Raises each LIF layer's threshold until its spike rate is at most `rate`.
fn tune(m: &mut M, input: &[u8], rate: f64) {
    for i in 0..m.layers.len() {
        if m.layers[i].readout || m.layers[i].w.is_empty() {
            continue;
        }
        m.layers[i].threshold = vec![1];
        loop {
            let bytes = m.encode();
            let model = Model::from_bytes(&bytes).unwrap();
            let mut arena = vec![0u8; model.arena_bytes()];
            let out = Engine::new(&model, &mut arena)
                .unwrap()
                .run(input)
                .map(|o| o.spikes[i])
                .unwrap();
            let neurons = model.layer_outputs(i).unwrap() as f64 * m.timesteps as f64;
            if out as f64 / neurons <= rate {
                break;
            }
            let t = m.layers[i].threshold[0];
            m.layers[i].threshold = vec![t + t / 4 + 1];
        }
    }
}

fn ref_mlp(encoding: Encoding) -> M {
    let mut rng = Rng(7);
    let hidden = layer(&mut rng, Kind::Dense { outputs: 256 }, (28, 28, 1), false);
    let out = layer(&mut rng, Kind::Dense { outputs: 10 }, (1, 1, 256), true);
    M {
        timesteps: 4,
        shape: (28, 28, 1),
        encoding,
        layers: vec![hidden, out],
    }
}

fn ref_conv() -> M {
    let mut rng = Rng(8);
    let c1 = layer(
        &mut rng,
        Kind::Conv {
            out: 16,
            k: 3,
            s: 1,
            p: 1,
        },
        (28, 28, 1),
        false,
    );
    let c2 = layer(
        &mut rng,
        Kind::Conv {
            out: 32,
            k: 3,
            s: 1,
            p: 1,
        },
        (14, 14, 16),
        false,
    );
    let out = layer(&mut rng, Kind::Dense { outputs: 10 }, (7, 7, 32), true);
    let pool = || L::pool(Kind::Avg { k: 2, s: 2 });
    M {
        timesteps: 4,
        shape: (28, 28, 1),
        encoding: Encoding::Direct,
        layers: vec![c1, pool(), c2, pool(), out],
    }
}

/// The event-driven conv kernel alone: rate-coded 14x14x16 spikes (about 10% per step, like
/// REF-CONV's second layer) into conv 3x3 16->32 pad 1, then a small readout.
fn conv_kernel() -> M {
    let mut rng = Rng(9);
    let c = layer(
        &mut rng,
        Kind::Conv {
            out: 32,
            k: 3,
            s: 1,
            p: 1,
        },
        (14, 14, 16),
        false,
    );
    let out = layer(&mut rng, Kind::Dense { outputs: 10 }, (14, 14, 32), true);
    M {
        timesteps: 4,
        shape: (14, 14, 16),
        encoding: Encoding::Rate { seed: 3 },
        layers: vec![c, out],
    }
}

/// Sparse input for `conv_kernel`: a tenth of the elements at full intensity.
fn spikes_10pct() -> Vec<u8> {
    (0..14 * 14 * 16)
        .map(|i: usize| {
            if i.wrapping_mul(2654435761) % 10 == 0 {
                255
            } else {
                0
            }
        })
        .collect()
}

/// The narrow event-driven kernel alone: rate-coded 1x1x256 input, a sixth of it at full
/// intensity (about REF-MLP's hidden spike rate), into a dense 256->10 int8 readout.
fn readout_kernel() -> M {
    let mut rng = Rng(10);
    let out = layer(&mut rng, Kind::Dense { outputs: 10 }, (1, 1, 256), true);
    M {
        timesteps: 4,
        shape: (1, 1, 256),
        encoding: Encoding::Rate { seed: 4 },
        layers: vec![out],
    }
}

/// Input for `readout_kernel`: every sixth element at full intensity.
fn spikes_one_in_six() -> Vec<u8> {
    (0..256).map(|i| if i % 6 == 0 { 255 } else { 0 }).collect()
}

fn bench(c: &mut Criterion, name: &str, m: M) {
    bench_on(c, name, m, digit());
}

fn bench_on(c: &mut Criterion, name: &str, mut m: M, input: Vec<u8>) {
    tune(&mut m, &input, 0.10);
    let bytes = m.encode();
    let model = Model::from_bytes(&bytes).unwrap();
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut engine = Engine::new(&model, &mut arena).unwrap();
    let o = engine.run(&input).unwrap();
    let rates: Vec<String> = (0..model.desc().layers.len())
        .map(|i| {
            format!(
                "{:.1}%",
                100.0 * o.spikes[i] as f64 / (model.layer_outputs(i).unwrap() as f64 * 4.0)
            )
        })
        .collect();
    println!(
        "{name}: SOPs {} MACs {} spike rate per layer {rates:?} arena {} B",
        o.sops,
        o.macs,
        model.arena_bytes()
    );
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(o.sops));
    g.bench_function("T=4", |b| {
        b.iter(|| {
            engine
                .run(std::hint::black_box(&input))
                .map(|o| o.class)
                .unwrap()
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench(c, "ref-mlp", ref_mlp(Encoding::Direct));
    bench(c, "ref-mlp-rate-input", ref_mlp(Encoding::Rate { seed: 1 }));
    bench(c, "ref-conv", ref_conv());
    bench_on(c, "conv-kernel", conv_kernel(), spikes_10pct());
    bench_on(c, "readout-kernel", readout_kernel(), spikes_one_in_six());
}

criterion_group!(benches_group, benches);
criterion_main!(benches_group);
