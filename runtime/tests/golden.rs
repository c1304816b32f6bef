//! Golden vectors: committed model files, inputs and the outputs they must give.
//!
//! The files in `tests/golden/` were made by this test with
//! `EMBER_BLESS=1 cargo test -p ember-runtime --test golden`; without the variable it only
//! compares. A change of format or semantics shows up here as a diff, on purpose.

mod common;

use common::{synaptic, Kind, Rng, L, M};
use ember_runtime::format::{Encoding, Precision, Width};
use ember_runtime::{Engine, Model};
use std::fmt::Write;
use std::path::PathBuf;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// 8x8 direct input, dense 64->16 LIF (int8), dense 16->4 readout.
fn mlp() -> M {
    let mut rng = Rng(1);
    let mut hidden = synaptic(&mut rng, Kind::Dense { outputs: 16 }, (8, 8, 1), false);
    hidden.precision = Precision::I8;
    hidden.w.iter_mut().for_each(|w| *w = (*w).clamp(-128, 127));
    hidden.width = Width::I32;
    hidden.threshold = vec![3000];
    let mut readout = synaptic(&mut rng, Kind::Dense { outputs: 4 }, (1, 1, 16), true);
    readout.precision = Precision::I8;
    readout
        .w
        .iter_mut()
        .for_each(|w| *w = (*w).clamp(-128, 127));
    hidden.inhibition = None;
    // Golden layers keep the storage they were blessed with (the generator now also draws Ell).
    (hidden.ell, readout.ell) = (None, None);
    M {
        timesteps: 4,
        shape: (8, 8, 1),
        encoding: Encoding::Direct,
        layers: vec![hidden, readout],
    }
}

/// 8x8 rate-coded input, sparse int4 conv 3x3 1->4 pad 1, avgpool 2, int8 conv 3x3 4->4 with
/// 16-bit membranes, maxpool 2, int16 dense 16->3 readout.
fn conv() -> M {
    let mut rng = Rng(2);
    let mut c1 = synaptic(
        &mut rng,
        Kind::Conv {
            out: 4,
            k: 3,
            s: 1,
            p: 1,
        },
        (8, 8, 1),
        false,
    );
    (c1.precision, c1.sparse, c1.threshold, c1.bias) = (Precision::I4, true, vec![6], vec![0]);
    c1.w.iter_mut()
        .enumerate()
        .for_each(|(i, w)| *w = if i % 3 == 0 { 0 } else { (i as i32 % 15) - 7 });
    let mut c2 = synaptic(
        &mut rng,
        Kind::Conv {
            out: 4,
            k: 3,
            s: 1,
            p: 1,
        },
        (4, 4, 4),
        false,
    );
    (c2.precision, c2.sparse, c2.width, c2.bias) = (Precision::I8, false, Width::I16, vec![0]);
    c2.threshold = vec![300, 350, 400, 450];
    c2.w.iter_mut()
        .enumerate()
        .for_each(|(i, w)| *w = (i as i32 * 37 % 227) - 100);
    let mut out = synaptic(&mut rng, Kind::Dense { outputs: 3 }, (2, 2, 4), true);
    (out.precision, out.sparse) = (Precision::I16, false);
    (c1.inhibition, c2.inhibition) = (None, None);
    (c1.ell, c2.ell, out.ell) = (None, None, None);
    let layers = vec![
        c1,
        L::pool(Kind::Avg { k: 2, s: 2 }),
        c2,
        L::pool(Kind::Max { k: 2, s: 2 }),
        out,
    ];
    M {
        timesteps: 6,
        shape: (8, 8, 1),
        encoding: Encoding::Rate { seed: 42 },
        layers,
    }
}

/// Four deterministic 8x8 inputs: a gradient, a square, a diagonal, all zero.
fn inputs() -> Vec<Vec<u8>> {
    let f = |g: &dyn Fn(usize, usize) -> u8| (0..64).map(|i| g(i / 8, i % 8)).collect::<Vec<u8>>();
    vec![
        f(&|y, x| (y * 32 + x * 4) as u8),
        f(&|y, x| {
            if (2..6).contains(&y) && (2..6).contains(&x) {
                250
            } else {
                0
            }
        }),
        f(&|y, x| if y == x { 255 } else { 10 }),
        vec![0; 64],
    ]
}

/// One line per input: class | readout | spikes per layer | SOPs MACs.
fn describe(bytes: &[u8]) -> String {
    let model = Model::from_bytes(bytes).expect("golden model loads");
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut engine = Engine::new(&model, &mut arena).unwrap();
    let mut text = String::new();
    for input in inputs() {
        let o = engine.run(&input).unwrap();
        writeln!(
            text,
            "class {} | readout {:?} | spikes {:?} | sops {} macs {}",
            o.class,
            o.readout,
            &o.spikes[..],
            o.sops,
            o.macs
        )
        .unwrap();
    }
    text
}

fn check(name: &str, m: M) {
    let dir = golden_dir();
    let (model_path, out_path) = (
        dir.join(format!("{name}.ember")),
        dir.join(format!("{name}.expected")),
    );
    if std::env::var_os("EMBER_BLESS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        let bytes = m.encode();
        std::fs::write(&model_path, &bytes).unwrap();
        std::fs::write(&out_path, describe(&bytes)).unwrap();
    }
    let bytes = std::fs::read(&model_path).expect("golden model exists (EMBER_BLESS=1 makes it)");
    assert_eq!(bytes, m.encode(), "{name}: the encoder's output changed");
    let want = std::fs::read_to_string(&out_path).unwrap();
    assert_eq!(describe(&bytes), want, "{name}: outputs changed");
    // The golden outputs are also what the scalar reference computes.
    for (line, input) in want.lines().zip(inputs()) {
        let r = common::reference(&m, &input, m.timesteps);
        assert!(line.starts_with(&format!(
            "class {} | readout {:?} | spikes {:?}",
            r.class, r.readout, r.spikes
        )));
    }
}

#[test]
fn golden_mlp() {
    check("mlp", mlp());
}

#[test]
fn golden_conv() {
    check("conv", conv());
}

#[test]
fn golden_inputs_file() {
    // The inputs, one after the other, for tools that feed them to the firmware.
    let path = golden_dir().join("inputs-8x8.bin");
    let all: Vec<u8> = inputs().concat();
    if std::env::var_os("EMBER_BLESS").is_some() {
        std::fs::write(&path, &all).unwrap();
    }
    assert_eq!(std::fs::read(path).unwrap(), all);
}
