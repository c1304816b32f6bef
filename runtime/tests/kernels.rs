//! Every optimised kernel against the scalar reference (tests/common): random models and
//! inputs under proptest, then named edge cases.

mod common;

use common::{matrix, out_shape, random_model, reference, synaptic, EllSpec, Kind, Rng, L, M};
use ember_runtime::format::{Encoding, Precision, Reset, Width};
use ember_runtime::{Engine, Model};
use proptest::prelude::*;

/// Runs the engine and the reference and asserts they agree on everything.
fn agree(m: &M, input: &[u8], timesteps: u16) -> common::Ref {
    let bytes = m.encode();
    let model = Model::from_bytes(&bytes).expect("generated model loads");
    let mut arena = vec![0u8; model.arena_bytes() + 3];
    let mut engine = Engine::new(&model, &mut arena).unwrap();
    let out = engine.run_for(input, timesteps).unwrap();
    let want = reference(m, input, timesteps);
    assert_eq!(out.readout, &want.readout[..], "readout");
    assert_eq!(&out.spikes[..], &want.spikes[..], "spikes per layer");
    assert_eq!(out.class, want.class, "class");
    assert_eq!(out.sops, want.sops, "SOPs");
    assert_eq!(out.macs, want.macs, "MACs");
    want
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn engine_matches_reference(seed in any::<u64>()) {
        let (m, input) = random_model(seed);
        agree(&m, &input, m.timesteps);
    }

    /// The same with every layer at int16 weights and 16-bit membranes, so that additions
    /// saturate often and their order matters.
    #[test]
    fn engine_matches_reference_when_saturating(seed in any::<u64>()) {
        let (mut m, input) = random_model(seed);
        for l in m.layers.iter_mut().filter(|l| !l.w.is_empty()) {
            let k = match l.precision { Precision::I4 => 4096, Precision::I8 => 256, Precision::I16 => 1 };
            l.w.iter_mut().for_each(|w| *w = (*w * k).clamp(-32768, 32767));
            l.precision = Precision::I16;
            l.width = Width::I16;
            l.threshold.iter_mut().for_each(|t| *t = (*t).clamp(1, 32767));
            l.bias.iter_mut().for_each(|b| *b = (*b).clamp(-32768, 32767));
        }
        // The direct-input current must still fit 32 bits: keep such models at int8 scale.
        if m.encoding == Encoding::Direct {
            m.layers[0].w.iter_mut().for_each(|w| *w /= 256);
        }
        agree(&m, &input, m.timesteps);
    }

    /// Models shaped for the int8 kernels of `fast` (32-bit membranes, dense int8 weights):
    /// wide convolutions and dense layers, pooled event values above 1, readouts of 10 to 20
    /// classes (one or two windows) and more, and enough rows for several chunks.
    #[test]
    fn fast_kernels_match_reference(seed in any::<u64>()) {
        let (m, input) = fast_model(seed);
        agree(&m, &input, m.timesteps);
    }

    /// The same weights stored dense and row-balanced sparse (Ell, both index widths, rows
    /// shuffled and padded) give the same classes, readouts and spikes, with 16-bit or
    /// 32-bit membranes; both agree with the reference (which also counts Ell's SOPs: every
    /// stored entry, padding included).
    #[test]
    fn ell_matches_dense(seed in any::<u64>()) {
        let (mut m, input) = random_model(seed);
        let mut rng = Rng(seed ^ 0xE11);
        if rng.chance(50) {
            for l in m.layers.iter_mut().filter(|l| !l.w.is_empty()) {
                l.width = Width::I16;
                l.threshold.iter_mut().for_each(|t| *t = (*t).clamp(1, 32767));
                l.bias.iter_mut().for_each(|b| *b = (*b).clamp(-32768, 32767));
            }
        }
        let mut shape = m.shape;
        let mut ell = m.clone();
        for (d, e) in m.layers.iter_mut().zip(ell.layers.iter_mut()) {
            let (_, cols) = matrix(d.kind, shape);
            shape = out_shape(d.kind, shape);
            if d.w.is_empty() {
                continue;
            }
            (d.sparse, d.ell) = (false, None);
            e.ell = Some(EllSpec {
                index_bits: if cols <= 16 && rng.chance(70) { 4 } else { 8 },
                extra: rng.range(0, 3) as usize,
                seed: rng.next(),
            });
        }
        let (a, b) = (agree(&m, &input, m.timesteps), agree(&ell, &input, m.timesteps));
        prop_assert_eq!((a.class, a.readout, a.spikes), (b.class, b.readout, b.spikes));
    }

    /// Running twice in the same arena gives the same result (state is reset).
    #[test]
    fn inference_is_repeatable(seed in any::<u64>()) {
        let (m, input) = random_model(seed);
        let bytes = m.encode();
        let model = Model::from_bytes(&bytes).unwrap();
        let mut arena = vec![0u8; model.arena_bytes()];
        let mut engine = Engine::new(&model, &mut arena).unwrap();
        let first = engine.run(&input).map(|o| (o.class, o.readout.to_vec(), o.spikes.clone())).unwrap();
        let second = engine.run(&input).map(|o| (o.class, o.readout.to_vec(), o.spikes.clone())).unwrap();
        prop_assert_eq!(first, second);
    }
}

/// A synaptic layer that the int8 kernels take: dense int8 weights over the whole range
/// (`density` percent non-zero), 32-bit membranes, thresholds low enough to spike.
fn int8_layer(rng: &mut Rng, kind: Kind, shape: (usize, usize, usize), readout: bool) -> L {
    let mut l = synaptic(rng, kind, shape, readout);
    let density = rng.range(5, 100) as u64;
    l.precision = Precision::I8;
    l.sparse = false;
    l.ell = None;
    l.width = Width::I32;
    l.w =
        l.w.iter()
            .map(|_| {
                if rng.chance(density) {
                    rng.range(-128, 127) as i32
                } else {
                    0
                }
            })
            .collect();
    let hi = rng.range(1, 600);
    l.threshold
        .iter_mut()
        .for_each(|t| *t = rng.range(1, hi) as i32);
    l
}

/// A random model for `fast_kernels_match_reference`.
fn fast_model(seed: u64) -> (M, Vec<u8>) {
    let mut rng = Rng(seed);
    let shape = (
        rng.range(1, 9) as usize,
        rng.range(1, 9) as usize,
        rng.range(1, 4) as usize,
    );
    let direct = rng.chance(50);
    let encoding = if direct {
        Encoding::Direct
    } else {
        Encoding::Rate {
            seed: rng.next() as u32,
        }
    };
    let mut layers = vec![];
    let mut cur = shape;
    for _ in 0..rng.range(0, 2) {
        let (h, w, _) = cur;
        let k = rng.range(1, 3) as usize;
        let p = rng.range(0, k as i64 - 1) as usize;
        let kind = if h + 2 * p < k || w + 2 * p < k || rng.chance(25) {
            Kind::Dense {
                outputs: rng.range(1, 40) as usize,
            }
        } else {
            Kind::Conv {
                out: rng.range(1, 40) as usize,
                k,
                s: rng.range(1, 2) as usize,
                p,
            }
        };
        layers.push(int8_layer(&mut rng, kind, cur, false));
        cur = out_shape(kind, cur);
        // Average pooling: event values up to 4 or 9 (smaller chunks of rows).
        let (h, w, _) = cur;
        if rng.chance(50) && h.min(w) >= 2 {
            let k = rng.range(2, h.min(w).min(3) as i64) as usize;
            let kind = Kind::Avg { k, s: k };
            layers.push(L::pool(kind));
            cur = out_shape(kind, cur);
        }
    }
    let classes = match rng.below(3) {
        0 => 10,
        1 => rng.range(10, 21) as usize,
        _ => rng.range(1, 40) as usize,
    };
    layers.push(int8_layer(
        &mut rng,
        Kind::Dense { outputs: classes },
        cur,
        true,
    ));
    let n = shape.0 * shape.1 * shape.2;
    let zeros = rng.range(0, 90) as u64;
    let input = (0..n)
        .map(|_| {
            if rng.chance(zeros) {
                0
            } else {
                rng.below(256) as u8
            }
        })
        .collect();
    let m = M {
        timesteps: rng.range(1, 5) as u16,
        shape,
        encoding,
        layers,
    };
    (m, input)
}

/// A 1x1x`n` input into a dense LIF layer of `outputs` neurons, then a dense readout.
fn two_layer(n: usize, outputs: usize, w1: Vec<i32>, threshold: i32, width: Width) -> M {
    let hidden = L {
        kind: Kind::Dense { outputs },
        precision: Precision::I16,
        sparse: false,
        ell: None,
        w: w1,
        threshold: vec![threshold],
        bias: vec![0],
        leak: 1 << 15,
        reset: Reset::Subtract,
        width,
        readout: false,
        inhibition: None,
    };
    let readout = L {
        kind: Kind::Dense { outputs: 2 },
        w: (0..outputs * 2)
            .map(|i| if i % 2 == 0 { 1 } else { -1 })
            .collect(),
        readout: true,
        precision: Precision::I8,
        ..hidden.clone()
    };
    M {
        timesteps: 4,
        shape: (1, 1, n),
        encoding: Encoding::Direct,
        layers: vec![hidden, readout],
    }
}

#[test]
fn threshold_reached_exactly_spikes() {
    // One input of 1 times weight 5 reaches threshold 5 exactly at every step.
    let m = two_layer(1, 1, vec![5], 5, Width::I32);
    let r = agree(&m, &[1], 4);
    assert_eq!(r.spikes, vec![4, 0]);
    // One below the threshold: 4, 8 -> spike at t=1 (8-5=3), 7 -> spike, 6 -> spike.
    let m = two_layer(1, 1, vec![4], 5, Width::I32);
    let r = agree(&m, &[1], 4);
    assert_eq!(r.spikes, vec![3, 0]);
}

#[test]
fn membranes_saturate_instead_of_wrapping() {
    // 16-bit membrane, current 255 * 32767 per step: saturates at i16::MAX, never wraps.
    let m = two_layer(1, 1, vec![32767], 32767, Width::I16);
    let r = agree(&m, &[255], 4);
    assert_eq!(r.spikes[0], 4);
    // Readout saturates too: a huge negative input current.
    let mut m = two_layer(1, 1, vec![-32768], 100, Width::I16);
    m.layers[1].w = vec![1, 1];
    m.layers[1].bias = vec![-32768];
    let r = agree(&m, &[255], 4);
    assert!(r.readout.iter().all(|&v| v == 4 * -32768));
}

#[test]
fn all_zero_input_gives_no_events() {
    let m = two_layer(8, 4, (0..32).map(|i| i - 16).collect(), 3, Width::I32);
    let r = agree(&m, &[0; 8], 4);
    assert_eq!((r.sops, r.macs), (0, 0));
    assert_eq!(r.spikes, vec![0, 0]);
}

#[test]
fn every_neuron_spiking() {
    let m = two_layer(4, 6, vec![100; 24], 1, Width::I32);
    let r = agree(&m, &[1, 2, 3, 4], 3);
    assert_eq!(r.spikes[0], 6 * 3);
    // Every hidden spike reaches both readout neurons: 6 neurons x 2 weights x 3 steps.
    assert_eq!(r.sops, 36);
}

#[test]
fn empty_pruned_rows_cost_nothing() {
    // Rate-coded input into a sparse layer whose first rows have no weights at all.
    let mut m = two_layer(
        4,
        3,
        vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 6],
        5,
        Width::I32,
    );
    m.encoding = Encoding::Rate { seed: 7 };
    m.layers[0].sparse = true;
    m.layers[0].precision = Precision::I4;
    let r = agree(&m, &[255, 255, 255, 0], 5);
    assert_eq!(r.sops, 0, "rows 0..3 are empty and row 3 never fires");
    let r = agree(&m, &[0, 0, 0, 255], 5);
    assert!(r.sops > 0);
}

/// The random models are not trivially quiet: most produce spikes and synaptic events, so
/// the comparison above exercises the kernels.
#[test]
fn random_models_are_active() {
    let (mut active, mut sops) = (0, 0);
    for seed in 0..200 {
        let (m, input) = random_model(seed);
        let r = reference(&m, &input, m.timesteps);
        active += (r.spikes.iter().sum::<u32>() > 0) as u32;
        sops += (r.sops > 0) as u32;
    }
    assert!(
        active > 60 && sops > 60,
        "active {active}/200, with SOPs {sops}/200"
    );
}

#[test]
fn lateral_inhibition_silences_the_losers() {
    // Three neurons driven 10, 9, 8 per step, threshold 10, inhibition 20: the first fires
    // at every step and keeps the others below threshold.
    let mut m = two_layer(3, 3, vec![10, 9, 8, 0, 0, 0, 0, 0, 0], 10, Width::I32);
    m.shape = (1, 1, 3);
    m.layers[0].w = vec![10, 0, 0, 0, 9, 0, 0, 0, 8];
    let free = agree(&m, &[1, 1, 1], 4);
    m.layers[0].inhibition = Some(20);
    let inhibited = agree(&m, &[1, 1, 1], 4);
    assert!(
        inhibited.spikes[0] < free.spikes[0],
        "{inhibited:?} vs {free:?}"
    );
    assert_eq!(inhibited.spikes[0], 4);
}

/// A rate-coded 1x1x`n` input straight into a dense int8 readout of `classes` (the narrow
/// kernel when 10 to 20), every input spiking at every step.
fn readout_only(n: usize, classes: usize, w: impl Fn(usize) -> i32) -> M {
    let readout = L {
        kind: Kind::Dense { outputs: classes },
        precision: Precision::I8,
        sparse: false,
        ell: None,
        w: (0..n * classes).map(w).collect(),
        threshold: vec![1],
        bias: vec![0],
        leak: 1 << 15,
        reset: Reset::Subtract,
        width: Width::I32,
        readout: true,
        inhibition: None,
    };
    M {
        timesteps: 3,
        shape: (1, 1, n),
        encoding: Encoding::Rate { seed: 5 },
        layers: vec![readout],
    }
}

#[test]
fn narrow_readout_lanes_at_their_limits() {
    // Up to 256 spikes at once into weights of -128 or 127: lanes at their largest sums, in
    // one chunk; then 257 and more inputs (two chunks), and every width around the windows.
    for n in [1, 255, 256, 257, 600] {
        for classes in [9, 10, 11, 14, 19, 20, 21] {
            for w in [-128, 127] {
                let m = readout_only(n, classes, |_| w);
                let r = agree(&m, &vec![255; n], 3);
                assert_eq!(r.readout[0] % w, 0, "n {n} classes {classes}");
            }
            let m = readout_only(n, classes, |i| [-128, 127, 0, -1, 1, 77][i % 6]);
            agree(&m, &vec![255; n], 3);
        }
    }
}

#[test]
fn pooled_event_values_take_smaller_chunks() {
    // Average pooling 3x3 of spikes: events up to 9, chunks of 28 rows, into 10 classes.
    let mut rng = Rng(11);
    let conv = Kind::Conv {
        out: 12,
        k: 3,
        s: 1,
        p: 1,
    };
    let mut c = int8_layer(&mut rng, conv, (9, 9, 2), false);
    c.threshold = vec![1];
    c.w.iter_mut().for_each(|w| *w = w.abs().min(126) + 1);
    let pool = Kind::Avg { k: 3, s: 3 };
    let readout = int8_layer(&mut rng, Kind::Dense { outputs: 10 }, (3, 3, 12), true);
    let m = M {
        timesteps: 4,
        shape: (9, 9, 2),
        encoding: Encoding::Rate { seed: 3 },
        layers: vec![c, L::pool(pool), readout],
    };
    let r = agree(&m, &[200; 162], 4);
    assert!(r.sops > 0 && r.spikes[0] > 100, "{r:?}");
}

#[test]
fn int8_layers_near_the_i32_limit_saturate() {
    // Biases near the 32-bit limits: the bound check sends these steps to the saturating
    // kernels (the int8 ones only run when nothing can saturate), narrow and wide readouts.
    for classes in [3, 10, 15, 30] {
        for bias in [i32::MAX - 300, i32::MIN + 300, i32::MAX / 2 + 1] {
            let mut m = readout_only(40, classes, |i| [127, -128, 5, -7][i % 4]);
            m.layers[0].bias = vec![bias];
            m.timesteps = 5;
            agree(&m, &[255; 40], 5);
        }
    }
    // A convolution whose membranes start near the limit (large bias, no leak).
    let mut rng = Rng(17);
    let conv = Kind::Conv {
        out: 12,
        k: 3,
        s: 1,
        p: 1,
    };
    let mut c = int8_layer(&mut rng, conv, (5, 5, 3), false);
    (c.bias, c.threshold, c.leak) = (vec![i32::MAX / 3], vec![i32::MAX], 1 << 15);
    let readout = int8_layer(&mut rng, Kind::Dense { outputs: 10 }, (5, 5, 12), true);
    let m = M {
        timesteps: 5,
        shape: (5, 5, 3),
        encoding: Encoding::Rate { seed: 9 },
        layers: vec![c, readout],
    };
    agree(&m, &[255; 75], 5);
}

/// A rate-coded 1x1x`n` input into an Ell layer of `cols` LIF neurons (`per_row` entries per
/// row at `precision`, every input spiking), then a dense readout.
fn ell_layer(n: usize, cols: usize, nonzero: usize, extra: usize, bits: u8, p: Precision) -> M {
    let mut rng = Rng((n * 31 + cols * 7 + nonzero + extra) as u64);
    let top = match p {
        Precision::I4 => 7,
        Precision::I8 => 127,
        Precision::I16 => 30000,
    };
    let mut w = vec![0; n * cols];
    for r in 0..n {
        let mut c = rng.below(cols as u64) as usize;
        for _ in 0..nonzero.min(cols) {
            w[r * cols + c] = if rng.chance(50) { top } else { -top - 1 };
            c = (c + 1) % cols;
        }
    }
    let hidden = L {
        kind: Kind::Dense { outputs: cols },
        precision: p,
        sparse: false,
        ell: Some(EllSpec {
            index_bits: bits,
            extra,
            seed: rng.next(),
        }),
        w,
        threshold: vec![top / 2 + 1],
        bias: vec![0],
        leak: 1 << 15,
        reset: Reset::Subtract,
        width: Width::I32,
        readout: false,
        inhibition: None,
    };
    let readout = L {
        kind: Kind::Dense { outputs: 3 },
        precision: Precision::I8,
        ell: None,
        w: (0..cols * 3).map(|i| (i as i32 % 7) - 3).collect(),
        readout: true,
        ..hidden.clone()
    };
    M {
        timesteps: 3,
        shape: (1, 1, n),
        encoding: Encoding::Rate { seed: 3 },
        layers: vec![hidden, readout],
    }
}

#[test]
fn ell_rows_at_every_alignment() {
    // Rows of 0 to 5 entries (odd counts start rows in the high nibble of a byte), at both
    // index widths and every precision, with and without padding, over 1 to 7 inputs.
    for p in [Precision::I4, Precision::I8, Precision::I16] {
        for bits in [4, 8] {
            for nonzero in 0..=5 {
                for extra in [0, 1, 2] {
                    for n in [1, 2, 3, 7] {
                        let m = ell_layer(n, 6, nonzero, extra, bits, p);
                        agree(&m, &vec![255; n], 3);
                    }
                }
            }
        }
    }
}

#[test]
fn ell_at_the_index_width_limits() {
    // 16 columns with 4-bit indices, 256 with 8-bit ones, every row full.
    for (cols, bits) in [(16, 4), (16, 8), (256, 8)] {
        for p in [Precision::I4, Precision::I8] {
            let m = ell_layer(9, cols, cols, 0, bits, p);
            agree(&m, &[255; 9], 3);
        }
    }
}

/// REF-CONV's shape (28x28x1 direct input, conv3x3 1->16 pad 1, avgpool 2, conv3x3 16->32
/// pad 1, avgpool 2, dense 1568->10 readout) with random int8 weights.
fn ref_conv_shaped(width: Width, seed: u64) -> M {
    let mut rng = Rng(seed);
    let conv = |out| Kind::Conv {
        out,
        k: 3,
        s: 1,
        p: 1,
    };
    let mut layer = |kind, shape, readout, threshold: i32| {
        let mut l = synaptic(&mut rng, kind, shape, readout);
        (l.precision, l.sparse, l.ell, l.inhibition) = (Precision::I8, false, None, None);
        l.w = l.w.iter().map(|_| rng.range(-128, 127) as i32).collect();
        (l.width, l.leak, l.bias, l.threshold) = (width, 1 << 15, vec![0], vec![threshold]);
        l
    };
    let layers = vec![
        layer(conv(16), (28, 28, 1), false, 6000),
        L::pool(Kind::Avg { k: 2, s: 2 }),
        layer(conv(32), (14, 14, 16), false, 300),
        L::pool(Kind::Avg { k: 2, s: 2 }),
        layer(Kind::Dense { outputs: 10 }, (7, 7, 32), true, 1),
    ];
    M {
        timesteps: 4,
        shape: (28, 28, 1),
        encoding: Encoding::Direct,
        layers,
    }
}

#[test]
fn ref_conv_arena_shares_transient_maps() {
    // 16-bit membranes: 25,088 + 12,544 + 20 bytes of membranes and 40 of class
    // scores, kept; then, within a step, the two pooled maps (3,136 and 1,568 bytes, both
    // live while the second convolution runs) and the first layer's current of one output
    // row (28 x 16 x 4 = 1,792 bytes, recomputed at every step, sharing the second map's
    // bytes). No spike map of a LIF layer followed by pooling exists.
    let m16 = ref_conv_shaped(Width::I16, 1).encode();
    let model = Model::from_bytes(&m16).unwrap();
    assert_eq!(
        model.arena_bytes(),
        25_088 + 12_544 + 20 + 40 + 3_136 + 1_792
    );
    // 32-bit membranes keep the first layer's current (12,544 x 4 bytes).
    let m32 = ref_conv_shaped(Width::I32, 1).encode();
    let model = Model::from_bytes(&m32).unwrap();
    assert_eq!(
        model.arena_bytes(),
        50_176 + 50_176 + 25_088 + 40 + 40 + 3_136 + 1_568
    );
}

#[test]
fn ref_conv_shaped_models_match_the_reference() {
    // Real-sized maps through every new path: the current recomputed row by row (16-bit),
    // spikes pooled as they fire, the arena's shared regions; a digit-like blob as input.
    let input: Vec<u8> = (0..784i32)
        .map(|i| {
            let (y, x) = (i / 28 - 14, i % 28 - 14);
            if (40..120).contains(&(y * y + x * x)) {
                230
            } else {
                0
            }
        })
        .collect();
    for (width, seed) in [(Width::I16, 1), (Width::I16, 2), (Width::I32, 3)] {
        let m = ref_conv_shaped(width, seed);
        let r = agree(&m, &input, 4);
        assert!(
            r.spikes[0] > 100 && r.spikes[2] > 10 && r.sops > 0,
            "{width:?}: {r:?}"
        );
        if width == Width::I16 {
            // The current is computed at each of the 4 steps: 4 x the pixels' MACs.
            assert_eq!(r.macs % 4, 0);
        }
    }
}
