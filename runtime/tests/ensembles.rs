//! Ensembles in one layer (`Neuron::GroupLateral`) and fused readouts (`Neuron::Fused`), the
//! two parts of a multimodal network's model: two ensembles laid side by side in one model
//! give exactly what each gives alone, and the fused class is the one the evidence fusion's
//! definition (in floating point) picks.

use ember_runtime::format::*;
use ember_runtime::{Engine, Model};

/// A small deterministic generator for test data.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// One ensemble: `inputs` -> `neurons` LIF neurons with lateral inhibition -> `classes`
/// votes, as plain matrices.
struct Ensemble {
    inputs: usize,
    w: Vec<i32>,
    threshold: Vec<i32>,
    votes: Vec<i32>,
}

impl Ensemble {
    fn random(rng: &mut Rng, inputs: usize, neurons: usize) -> Ensemble {
        Ensemble {
            inputs,
            w: (0..inputs * neurons)
                .map(|_| rng.below(12) as i32 - 2)
                .collect(),
            threshold: (0..neurons)
                .map(|_| 3000 + rng.below(15000) as i32)
                .collect(),
            votes: (0..neurons * CLASSES)
                .map(|_| rng.below(128) as i32)
                .collect(),
        }
    }
}

const CLASSES: usize = 4;
const INHIBITION: i32 = 2000;

fn le(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Encodes a rate- or direct-coded model of a lateral layer and a readout; `groups` turns
/// the lateral layer into groups of that size and the readout into a fused one of that many
/// classes per group.
fn model(
    inputs: usize,
    neurons: usize,
    w: &[i32],
    threshold: &[i32],
    votes: &[i32],
    groups: Option<(u16, u16)>,
    encoding: Encoding,
) -> Vec<u8> {
    let (w8, th, v8): (Vec<u8>, Vec<u8>, Vec<u8>) = (
        w.iter().map(|&x| x as i8 as u8).collect(),
        le(threshold),
        votes.iter().map(|&x| x as i8 as u8).collect(),
    );
    let lif = Lif {
        threshold: Channelwise::PerChannel(&th),
        bias: Channelwise::Uniform(0),
        leak: Leak::from_fixed(fixed::types::U1F15::from_num(0.875)).unwrap(),
        reset: Reset::Zero,
        membrane: Width::I32,
    };
    let neuron = match groups {
        None => Neuron::Lateral(Lateral {
            lif,
            inhibition: INHIBITION,
        }),
        Some((group, _)) => Neuron::GroupLateral(GroupLateral {
            lif,
            inhibition: INHIBITION,
            group,
        }),
    };
    let readout = Readout {
        bias: Channelwise::Uniform(0),
        leak: Leak::ZERO,
        membrane: Width::I32,
    };
    let outputs = votes.len() / neurons;
    // Evidence priors: a different pseudo-count per group.
    let priors = le(
        &(0..outputs as i32).map(|g| 40 + 25 * g).collect::<Vec<_>>()
            [..outputs / groups.map_or(1, |g| g.1.max(1) as usize)],
    );
    let dense = |outputs: usize, values, neuron| {
        Layer::Dense(Dense {
            outputs: outputs as u16,
            weights: Weights {
                precision: Precision::I8,
                storage: Storage::Dense { values },
            },
            neuron,
        })
    };
    let mut layers = heapless::Vec::new();
    layers.push(dense(neurons, &w8, neuron)).unwrap();
    let head = match groups {
        None => Neuron::Readout(readout),
        Some((_, classes)) => Neuron::Fused(Fused {
            readout,
            classes,
            prior: Channelwise::PerChannel(&priors),
        }),
    };
    layers.push(dense(outputs, &v8, head)).unwrap();
    let desc = ModelDesc {
        name: "ensembles",
        timesteps: 12,
        input: Input {
            shape: Shape {
                height: 1,
                width: inputs as u16,
                channels: 1,
            },
            encoding,
        },
        layers,
    };
    let mut out = vec![0u8; 1 << 16];
    let n = ember_runtime::encode(&desc, &mut out).unwrap();
    out.truncate(n);
    out
}

/// (class, readout, spikes per layer, SOPs) of one inference.
fn run(bytes: &[u8], input: &[u8]) -> (u16, Vec<i32>, Vec<u32>, u64) {
    let model = Model::from_bytes(bytes).unwrap();
    let mut arena = vec![0u8; model.arena_bytes() + 8];
    let mut engine = Engine::new(&model, &mut arena).unwrap();
    let o = engine.run(input).unwrap();
    (o.class, o.readout.to_vec(), o.spikes.to_vec(), o.sops)
}

/// The class the evidence fusion's definition picks from the groups' scores, in f64 (the
/// smoothed distributions multiplied); `None` when the best two are too close to call in
/// floating point. `prior(g)`: group g's pseudo-count.
fn fused_reference(scores: &[i32], prior: impl Fn(usize) -> f64) -> Option<u16> {
    let fused: Vec<f64> = (0..CLASSES)
        .map(|c| {
            scores
                .chunks(CLASSES)
                .enumerate()
                .map(|(g, s)| {
                    let total: f64 = s.iter().map(|&v| f64::from(v.max(0))).sum();
                    (f64::from(s[c].max(0)) + prior(g)) / (total + CLASSES as f64 * prior(g))
                })
                .product()
        })
        .collect();
    clear_best(&fused)
}

/// The arg max of `fused`, unless the best two are within floating-point noise.
fn clear_best(fused: &[f64]) -> Option<u16> {
    let mut order: Vec<usize> = (0..CLASSES).collect();
    order.sort_by(|&a, &b| fused[b].total_cmp(&fused[a]).then(a.cmp(&b)));
    let (best, second) = (fused[order[0]], fused[order[1]]);
    (best - second > 1e-9 * best.abs()).then_some(order[0] as u16)
}

#[test]
fn two_ensembles_in_one_layer_give_what_each_gives_alone() {
    let mut rng = Rng(7);
    let (mut fired, mut possible) = (0u32, 0u32);
    for case in 0..40 {
        let n = 3 + rng.below(6) as usize;
        let (ia, ib) = (5 + rng.below(20) as usize, 5 + rng.below(20) as usize);
        let a = Ensemble::random(&mut rng, ia, n);
        let b = Ensemble::random(&mut rng, ib, n);
        let (m, nn) = (a.inputs + b.inputs, 2 * n);
        // Block-diagonal weights (inputs x neurons) and votes (neurons x 2 CLASSES).
        let mut w = vec![0; m * nn];
        for (k, e) in [&a, &b].into_iter().enumerate() {
            for i in 0..e.inputs {
                for j in 0..n {
                    w[(k * a.inputs + i) * nn + k * n + j] = e.w[i * n + j];
                }
            }
        }
        let mut votes = vec![0; nn * 2 * CLASSES];
        for (k, e) in [&a, &b].into_iter().enumerate() {
            for j in 0..n {
                for c in 0..CLASSES {
                    votes[(k * n + j) * 2 * CLASSES + k * CLASSES + c] = e.votes[j * CLASSES + c];
                }
            }
        }
        let threshold: Vec<i32> = a.threshold.iter().chain(&b.threshold).copied().collect();
        let joint = model(
            m,
            nn,
            &w,
            &threshold,
            &votes,
            Some((n as u16, CLASSES as u16)),
            Encoding::Direct,
        );
        let alone = |e: &Ensemble| {
            model(
                e.inputs,
                n,
                &e.w,
                &e.threshold,
                &e.votes,
                None,
                Encoding::Direct,
            )
        };
        let (ma, mb) = (alone(&a), alone(&b));
        for _ in 0..5 {
            let x: Vec<u8> = (0..m).map(|_| rng.below(256) as u8).collect();
            let (class, readout, spikes, sops) = run(&joint, &x);
            let ra = run(&ma, &x[..a.inputs]);
            let rb = run(&mb, &x[a.inputs..]);
            let both: Vec<i32> = ra.1.iter().chain(&rb.1).copied().collect();
            assert_eq!(readout, both, "case {case}: readouts");
            assert_eq!(spikes[0], ra.2[0] + rb.2[0], "case {case}: spikes");
            (fired, possible) = (fired + spikes[0], possible + 12 * nn as u32);
            // Synaptic operations: each spike's row touches every column of the joint
            // layer (zeros included, dense storage), so only the inhibition counts compare.
            assert!(sops > 0 || spikes[0] == 0);
            if let Some(expected) = fused_reference(&readout, |g| 40.0 + 25.0 * g as f64) {
                assert_eq!(class, expected, "case {case}: {readout:?}");
            }
        }
    }
    // Neither silent nor saturated, so the inhibition decided which neurons fired.
    assert!(
        possible / 10 < fired && fired < possible * 9 / 10,
        "{fired} of {possible} possible spikes"
    );
}

#[test]
fn fused_class_follows_the_definition_on_controlled_scores() {
    // A readout fed straight by the input (identity votes x 100, one step): the scores are
    // the input bytes times 100, so every score pattern can be tried.
    let mut rng = Rng(11);
    // Pseudo-counts from none to larger than most scores.
    for prior in [0, 50, 1500, 40000] {
        let mut checked = 0;
        for _ in 0..400 {
            let groups = 1 + rng.below(3) as usize;
            let k = groups * CLASSES;
            let w: Vec<u8> = (0..k * k)
                .map(|i| if i / k == i % k { 100 } else { 0 })
                .collect();
            let readout = Readout {
                bias: Channelwise::Uniform(0),
                leak: Leak::ZERO,
                membrane: Width::I32,
            };
            let mut layers = heapless::Vec::new();
            layers
                .push(Layer::Dense(Dense {
                    outputs: k as u16,
                    weights: Weights {
                        precision: Precision::I8,
                        storage: Storage::Dense { values: &w },
                    },
                    neuron: Neuron::Fused(Fused {
                        readout,
                        classes: CLASSES as u16,
                        prior: Channelwise::Uniform(prior),
                    }),
                }))
                .unwrap();
            let desc = ModelDesc {
                name: "fused",
                timesteps: 1,
                input: Input {
                    shape: Shape {
                        height: 1,
                        width: k as u16,
                        channels: 1,
                    },
                    encoding: Encoding::Direct,
                },
                layers,
            };
            let mut bytes = vec![0u8; 4096];
            let len = ember_runtime::encode(&desc, &mut bytes).unwrap();
            // Sparse scores (zeros, a silent group) as well as dense ones.
            let x: Vec<u8> = (0..k)
                .map(|_| match rng.below(4) {
                    0 => 0,
                    _ => rng.below(256) as u8,
                })
                .collect();
            let (class, scores, _, _) = run(&bytes[..len], &x);
            assert_eq!(
                scores,
                x.iter().map(|&v| 100 * i32::from(v)).collect::<Vec<_>>()
            );
            if let Some(expected) = fused_reference(&scores, |_| f64::from(prior)) {
                assert_eq!(class, expected, "{scores:?} with prior {prior}");
                checked += 1;
            }
        }
        assert!(
            checked > 300,
            "prior {prior}: only {checked} cases were clear-cut"
        );
    }
}

#[test]
fn groups_and_classes_that_do_not_divide_are_refused() {
    let mut rng = Rng(3);
    let e = Ensemble::random(&mut rng, 6, 6);
    // 6 neurons in groups of `group`, 8 readout outputs in groups of `classes`.
    let votes: Vec<i32> = (0..6 * 8).map(|i| i % 50).collect();
    for (group, classes, ok) in [
        (3u16, 4u16, true),
        (6, 8, true),
        (1, 2, true),
        (4, 4, false),
        (0, 4, false),
        (3, 3, false),
        (3, 0, false),
    ] {
        let bytes = model(
            6,
            6,
            &e.w,
            &e.threshold,
            &votes,
            Some((group, classes)),
            Encoding::Rate { seed: 1 },
        );
        assert_eq!(
            Model::from_bytes(&bytes).is_ok(),
            ok,
            "groups of {group} of 6 neurons, of {classes} of 8 classes"
        );
    }
}

#[test]
fn a_fused_readout_must_be_dense() {
    // A conv readout's outputs are positions x channels, not groups of classes: refused.
    let w = [1u8; 2 * 2 * 4];
    let mut layers = heapless::Vec::new();
    layers
        .push(Layer::Conv2d(Conv2d {
            out_channels: 4,
            kernel: 2,
            stride: 1,
            padding: 0,
            weights: Weights {
                precision: Precision::I8,
                storage: Storage::Dense { values: &w },
            },
            neuron: Neuron::Fused(Fused {
                readout: Readout {
                    bias: Channelwise::Uniform(0),
                    leak: Leak::ZERO,
                    membrane: Width::I32,
                },
                classes: 2,
                prior: Channelwise::PerChannel(&[1, 0, 0, 0, 2, 0, 0, 0]),
            }),
        }))
        .unwrap();
    let desc = ModelDesc {
        name: "conv-fused",
        timesteps: 2,
        input: Input {
            shape: Shape {
                height: 4,
                width: 4,
                channels: 1,
            },
            encoding: Encoding::Direct,
        },
        layers,
    };
    let mut bytes = vec![0u8; 4096];
    let n = ember_runtime::encode(&desc, &mut bytes).unwrap();
    assert!(matches!(
        Model::from_bytes(&bytes[..n]),
        Err(ember_runtime::Error::BadTopology)
    ));
}
