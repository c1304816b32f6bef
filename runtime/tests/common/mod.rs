//! Test support: an owned model description that encodes to `.ember` bytes, and a plain
//! scalar reference implementation of the engine's semantics (wide integers, dense i32
//! weight matrices, no packing, no tricks) to compare every optimised kernel against.
#![allow(dead_code, clippy::needless_range_loop)]

use ember_runtime::format::*;

/// A layer with its weights as a plain `rows x cols` matrix of i32.
#[derive(Debug, Clone)]
pub struct L {
    pub kind: Kind,
    pub precision: Precision,
    pub sparse: bool,
    /// Row-balanced sparse storage (`Storage::Ell`) instead of dense or CSR (takes precedence
    /// over `sparse`).
    pub ell: Option<EllSpec>,
    /// Row-major `rows x cols` (see the format docs for the row order).
    pub w: Vec<i32>,
    /// One per output channel.
    pub threshold: Vec<i32>,
    pub bias: Vec<i32>,
    pub leak: u16,
    pub reset: Reset,
    pub width: Width,
    pub readout: bool,
    /// Lateral inhibition strength, for `Neuron::Lateral`.
    pub inhibition: Option<i32>,
}

/// How a layer is stored as `Storage::Ell`: every row keeps `per_row` entries, its non-zero
/// weights and padding entries (value 0, random column, possibly one the row already names),
/// in an order shuffled by `seed`.
#[derive(Debug, Clone, Copy)]
pub struct EllSpec {
    /// 4 or 8.
    pub index_bits: u8,
    /// Entries per row beyond the fullest row's non-zero count (capped at the column count).
    pub extra: usize,
    /// Shuffles each row's entries and draws the padding columns.
    pub seed: u64,
}

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Dense {
        outputs: usize,
    },
    Conv {
        out: usize,
        k: usize,
        s: usize,
        p: usize,
    },
    Avg {
        k: usize,
        s: usize,
    },
    Max {
        k: usize,
        s: usize,
    },
}

#[derive(Debug, Clone)]
pub struct M {
    pub timesteps: u16,
    pub shape: (usize, usize, usize),
    pub encoding: Encoding,
    pub layers: Vec<L>,
}

impl L {
    pub fn pool(kind: Kind) -> L {
        L {
            kind,
            precision: Precision::I8,
            sparse: false,
            ell: None,
            w: vec![],
            threshold: vec![],
            bias: vec![],
            leak: 1 << 15,
            reset: Reset::Subtract,
            width: Width::I32,
            readout: false,
            inhibition: None,
        }
    }
}

impl L {
    /// Entries per row of this layer's `Storage::Ell` (`rows x cols` matrix).
    pub fn ell_per_row(&self, rows: usize, cols: usize) -> usize {
        let spec = self.ell.expect("an Ell layer");
        let fullest = (0..rows)
            .map(|r| (0..cols).filter(|&c| self.w[r * cols + c] != 0).count())
            .max()
            .unwrap_or(0);
        (fullest + spec.extra).min(cols)
    }

    /// The entries (column, weight) of every row of this layer's `Storage::Ell`, row after
    /// row: each row's non-zero weights and padding, shuffled.
    pub fn ell_entries(&self, rows: usize, cols: usize) -> Vec<(usize, i32)> {
        let spec = self.ell.expect("an Ell layer");
        let per_row = self.ell_per_row(rows, cols);
        let mut rng = Rng(spec.seed);
        let mut all = vec![];
        for r in 0..rows {
            let mut row: Vec<(usize, i32)> = (0..cols)
                .filter(|&c| self.w[r * cols + c] != 0)
                .map(|c| (c, self.w[r * cols + c]))
                .collect();
            while row.len() < per_row {
                row.push((rng.below(cols as u64) as usize, 0));
            }
            for i in (1..row.len()).rev() {
                row.swap(i, rng.below(i as u64 + 1) as usize);
            }
            all.extend(row);
        }
        all
    }
}

/// Column indices packed at `bits` (4: two per byte, low nibble first; 8: one per byte).
pub fn pack_indices(cols: &[usize], bits: u8) -> Vec<u8> {
    match bits {
        8 => cols.iter().map(|&c| c as u8).collect(),
        4 => cols
            .chunks(2)
            .map(|c| (c[0] as u8 & 0xF) | ((c.get(1).copied().unwrap_or(0) as u8 & 0xF) << 4))
            .collect(),
        _ => panic!("index bits {bits}"),
    }
}

pub fn pack(values: &[i32], p: Precision) -> Vec<u8> {
    let bound = 1i32 << (p.bits() - 1);
    assert!(
        values.iter().all(|v| (-bound..bound).contains(v)),
        "a test weight does not fit {p:?}"
    );
    match p {
        Precision::I8 => values.iter().map(|&v| v as i8 as u8).collect(),
        Precision::I16 => values
            .iter()
            .flat_map(|&v| (v as i16).to_le_bytes())
            .collect(),
        Precision::I4 => values
            .chunks(2)
            .map(|c| (c[0] as u8 & 0xF) | ((c.get(1).copied().unwrap_or(0) as u8 & 0xF) << 4))
            .collect(),
    }
}

fn channelwise(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Output shape of layer `l` given its input shape.
pub fn out_shape(kind: Kind, (h, w, c): (usize, usize, usize)) -> (usize, usize, usize) {
    match kind {
        Kind::Dense { outputs } => (1, 1, outputs),
        Kind::Conv { out, k, s, p } => ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1, out),
        Kind::Avg { k, s } | Kind::Max { k, s } => ((h - k) / s + 1, (w - k) / s + 1, c),
    }
}

/// Rows and columns of layer `kind`'s weight matrix for an input of shape `shape`.
pub fn matrix(kind: Kind, (h, w, c): (usize, usize, usize)) -> (usize, usize) {
    match kind {
        Kind::Dense { outputs } => (h * w * c, outputs),
        Kind::Conv { out, k, .. } => (k * k * c, out),
        _ => (0, 0),
    }
}

impl M {
    /// Encodes to a complete `.ember` file.
    pub fn encode(&self) -> Vec<u8> {
        // Blobs per layer: (values, row_ptr, cols, threshold, bias).
        let mut blobs = vec![];
        let mut shape = self.shape;
        for l in &self.layers {
            let (rows, cols) = matrix(l.kind, shape);
            let mut b = (
                vec![],
                vec![],
                vec![],
                channelwise(&l.threshold),
                channelwise(&l.bias),
            );
            if let Some(spec) = l.ell {
                let entries = l.ell_entries(rows, cols);
                let idx: Vec<usize> = entries.iter().map(|e| e.0).collect();
                let w: Vec<i32> = entries.iter().map(|e| e.1).collect();
                b.2 = pack_indices(&idx, spec.index_bits);
                b.0 = pack(&w, l.precision);
            } else if l.sparse {
                let mut kept = vec![];
                b.1.extend(0u32.to_le_bytes());
                for r in 0..rows {
                    for c in 0..cols {
                        if l.w[r * cols + c] != 0 {
                            kept.push(l.w[r * cols + c]);
                            b.2.extend((c as u16).to_le_bytes());
                        }
                    }
                    b.1.extend((kept.len() as u32).to_le_bytes());
                }
                b.0 = pack(&kept, l.precision);
            } else {
                b.0 = pack(&l.w, l.precision);
            }
            blobs.push(b);
            shape = out_shape(l.kind, shape);
        }
        let mut layers = heapless::Vec::new();
        let mut shape = self.shape;
        for (l, b) in self.layers.iter().zip(&blobs) {
            let (rows, cols) = matrix(l.kind, shape);
            shape = out_shape(l.kind, shape);
            let storage = if let Some(spec) = l.ell {
                Storage::Ell {
                    per_row: l.ell_per_row(rows, cols) as u16,
                    index_bits: spec.index_bits,
                    cols: &b.2,
                    values: &b.0,
                }
            } else if l.sparse {
                Storage::Sparse {
                    row_ptr: &b.1,
                    cols: &b.2,
                    values: &b.0,
                }
            } else {
                Storage::Dense { values: &b.0 }
            };
            let weights = Weights {
                precision: l.precision,
                storage,
            };
            let cw = |v: &[i32], bytes| match v {
                [one] => Channelwise::Uniform(*one),
                _ => Channelwise::PerChannel(bytes),
            };
            let neuron = if l.readout {
                Neuron::Readout(Readout {
                    bias: cw(&l.bias, &b.4),
                    leak: leak(l.leak),
                    membrane: l.width,
                })
            } else {
                let lif = Lif {
                    threshold: cw(&l.threshold, &b.3),
                    bias: cw(&l.bias, &b.4),
                    leak: leak(l.leak),
                    reset: l.reset,
                    membrane: l.width,
                };
                match l.inhibition {
                    Some(inhibition) => Neuron::Lateral(Lateral { lif, inhibition }),
                    None => Neuron::Lif(lif),
                }
            };
            let layer = match l.kind {
                Kind::Dense { outputs } => Layer::Dense(Dense {
                    outputs: outputs as u16,
                    weights,
                    neuron,
                }),
                Kind::Conv { out, k, s, p } => Layer::Conv2d(Conv2d {
                    out_channels: out as u16,
                    kernel: k as u8,
                    stride: s as u8,
                    padding: p as u8,
                    weights,
                    neuron,
                }),
                Kind::Avg { k, s } => Layer::AvgPool(Pool {
                    kernel: k as u8,
                    stride: s as u8,
                }),
                Kind::Max { k, s } => Layer::MaxPool(Pool {
                    kernel: k as u8,
                    stride: s as u8,
                }),
            };
            layers.push(layer).unwrap();
        }
        let (h, w, c) = self.shape;
        let desc = ModelDesc {
            name: "test",
            timesteps: self.timesteps,
            input: Input {
                shape: Shape {
                    height: h as u16,
                    width: w as u16,
                    channels: c as u16,
                },
                encoding: self.encoding,
            },
            layers,
        };
        let mut out = vec![0u8; 1 << 22];
        let n = encode(&desc, &mut out).unwrap();
        out.truncate(n);
        out
    }
}

fn leak(bits: u16) -> Leak {
    Leak::from_fixed(fixed::types::U1F15::from_bits(bits)).unwrap()
}

/// What the reference computes for one inference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    pub class: u16,
    pub readout: Vec<i32>,
    pub spikes: Vec<u32>,
    pub sops: u64,
    pub macs: u64,
}

fn per_channel(v: &[i32], c: usize) -> i64 {
    if v.len() == 1 {
        v[0] as i64
    } else {
        v[c] as i64
    }
}

fn clamp(u: i64, width: Width) -> i64 {
    u.clamp(width.min() as i64, width.max() as i64)
}

/// Runs the model the slow, obvious way.
pub fn reference(m: &M, input: &[u8], timesteps: u16) -> Ref {
    let n = m.layers.len();
    let mut shapes = vec![m.shape];
    for l in &m.layers {
        shapes.push(out_shape(l.kind, *shapes.last().unwrap()));
    }
    let len = |s: (usize, usize, usize)| s.0 * s.1 * s.2;
    let mut mem: Vec<Vec<i64>> = shapes[1..].iter().map(|&s| vec![0; len(s)]).collect();
    let mut acts: Vec<Vec<u8>> = shapes[1..].iter().map(|&s| vec![0; len(s)]).collect();
    let mut score = vec![0i64; len(shapes[n])];
    let mut spikes = vec![0u32; n];
    let (mut sops, mut macs) = (0u64, 0u64);

    // Direct input: the first layer's current, by gathering (order does not matter: the
    // loader guarantees it fits in 32 bits).
    let mut current = vec![];
    if m.encoding == Encoding::Direct {
        let l = &m.layers[0];
        let (ih, iw, ic) = shapes[0];
        let (oh, ow, oc) = shapes[1];
        let (rows, cols) = matrix(l.kind, shapes[0]);
        // An Ell layer multiplies every stored entry of a row, padding included.
        let per_row = l.ell.map(|_| l.ell_per_row(rows, cols));
        current = vec![0i64; oh * ow * oc];
        for oy in 0..oh {
            for ox in 0..ow {
                for co in 0..oc {
                    let mut acc = 0i64;
                    let mut add = |x: u8, w: i32| {
                        match per_row {
                            Some(n) if x != 0 && co == 0 => macs += n as u64,
                            None if x != 0 && (!l.sparse || w != 0) => macs += 1,
                            _ => {}
                        }
                        acc += x as i64 * w as i64;
                    };
                    match l.kind {
                        Kind::Dense { .. } => {
                            for i in 0..ih * iw * ic {
                                add(input[i], l.w[i * cols + co]);
                            }
                        }
                        Kind::Conv { k, s, p, .. } => {
                            for ky in 0..k {
                                for kx in 0..k {
                                    let (iy, ix) = (
                                        (oy * s + ky) as i64 - p as i64,
                                        (ox * s + kx) as i64 - p as i64,
                                    );
                                    if iy < 0 || ix < 0 || iy >= ih as i64 || ix >= iw as i64 {
                                        continue;
                                    }
                                    for ci in 0..ic {
                                        let x = input[(iy as usize * iw + ix as usize) * ic + ci];
                                        add(x, l.w[((ky * k + kx) * ic + ci) * cols + co]);
                                    }
                                }
                            }
                        }
                        _ => unreachable!(),
                    }
                    current[(oy * ow + ox) * oc + co] = acc;
                }
            }
        }
    }

    let mut rng = match m.encoding {
        Encoding::Rate { seed } => {
            if seed == 0 {
                0x9E37_79B9u32
            } else {
                seed
            }
        }
        Encoding::Direct => 0,
    };
    let direct_macs = macs;
    for t in 0..timesteps {
        let input_spikes: Vec<u8> = match m.encoding {
            Encoding::Direct => input.to_vec(),
            Encoding::Rate { .. } => input
                .iter()
                .map(|&px| {
                    rng ^= rng << 13;
                    rng ^= rng >> 17;
                    rng ^= rng << 5;
                    ((rng >> 24) < px as u32) as u8
                })
                .collect(),
        };
        for (i, l) in m.layers.iter().enumerate() {
            let prev = if i == 0 {
                input_spikes.clone()
            } else {
                acts[i - 1].clone()
            };
            let (ih, iw, ic) = shapes[i];
            let (oh, ow, oc) = shapes[i + 1];
            match l.kind {
                Kind::Avg { k, s } | Kind::Max { k, s } => {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            for c in 0..oc {
                                let mut v: u32 = 0;
                                for dy in 0..k {
                                    for dx in 0..k {
                                        let x = prev[((oy * s + dy) * iw + ox * s + dx) * ic + c]
                                            as u32;
                                        v = if matches!(l.kind, Kind::Max { .. }) {
                                            v.max(x)
                                        } else {
                                            v + x
                                        };
                                    }
                                }
                                acts[i][(oy * ow + ox) * oc + c] = v as u8;
                            }
                        }
                    }
                    continue;
                }
                _ => {}
            }
            let (rows, cols) = matrix(l.kind, shapes[i]);
            let per_row = l.ell.map(|_| l.ell_per_row(rows, cols));
            let u = &mut mem[i];
            for (j, uj) in u.iter_mut().enumerate() {
                let c = j % oc;
                *uj = (*uj * l.leak as i64).div_euclid(1 << 15);
                *uj = clamp(*uj + per_channel(&l.bias, c), l.width);
            }
            if i == 0 && m.encoding == Encoding::Direct {
                for (uj, cur) in u.iter_mut().zip(&current) {
                    *uj = clamp(*uj + cur, l.width);
                }
                // With 16-bit membranes the engine recomputes the current at every step
                // instead of keeping it (see `Model::arena_bytes`): its MACs count each time.
                if l.width == Width::I16 && t > 0 {
                    macs += direct_macs;
                }
            } else {
                // Scatter in ascending input order, saturating after every addition.
                let mut add_row = |row: usize, v: u8, base: usize, u: &mut Vec<i64>| {
                    // An Ell row adds its stored entries, padding (zeros) included.
                    sops += per_row.unwrap_or(0) as u64;
                    for co in 0..cols {
                        let w = l.w[row * cols + co];
                        if (l.sparse || per_row.is_some()) && w == 0 {
                            continue;
                        }
                        sops += u64::from(per_row.is_none());
                        u[base + co] = clamp(u[base + co] + v as i64 * w as i64, l.width);
                    }
                };
                for y in 0..ih {
                    for x in 0..iw {
                        for ci in 0..ic {
                            let v = prev[(y * iw + x) * ic + ci];
                            if v == 0 {
                                continue;
                            }
                            match l.kind {
                                Kind::Dense { .. } => add_row((y * iw + x) * ic + ci, v, 0, u),
                                Kind::Conv { k, s, p, .. } => {
                                    for ky in 0..k {
                                        for kx in 0..k {
                                            let ny = y as i64 + p as i64 - ky as i64;
                                            let nx = x as i64 + p as i64 - kx as i64;
                                            if ny < 0
                                                || nx < 0
                                                || ny % s as i64 != 0
                                                || nx % s as i64 != 0
                                            {
                                                continue;
                                            }
                                            let (oy, ox) = (
                                                (ny / s as i64) as usize,
                                                (nx / s as i64) as usize,
                                            );
                                            if oy >= oh || ox >= ow {
                                                continue;
                                            }
                                            add_row(
                                                (ky * k + kx) * ic + ci,
                                                v,
                                                (oy * ow + ox) * oc,
                                                u,
                                            );
                                        }
                                    }
                                }
                                _ => unreachable!(),
                            }
                        }
                    }
                }
            }
            if l.readout {
                for (s, uj) in score.iter_mut().zip(u.iter()) {
                    *s = (*s + uj).clamp(i32::MIN as i64, i32::MAX as i64);
                }
            } else {
                let mut fired = 0i64;
                for (j, uj) in u.iter_mut().enumerate() {
                    let th = per_channel(&l.threshold, j % oc);
                    if *uj >= th {
                        acts[i][j] = 1;
                        fired += 1;
                        *uj = match l.reset {
                            Reset::Subtract => *uj - th,
                            Reset::Zero => 0,
                        };
                    } else {
                        acts[i][j] = 0;
                    }
                }
                spikes[i] += fired as u32;
                // Lateral inhibition: each other neuron's spike lowers the membrane.
                if let Some(inh) = l.inhibition {
                    if fired > 0 && inh > 0 {
                        for (uj, &s) in u.iter_mut().zip(&acts[i]) {
                            let drop = ((fired - s as i64) * inh as i64).min(i32::MAX as i64);
                            *uj = clamp(*uj - drop, l.width);
                        }
                        sops += fired as u64 * (u.len() as u64 - 1);
                    }
                }
            }
        }
    }
    let readout: Vec<i32> = score.iter().map(|&s| s as i32).collect();
    let mut class = 0;
    for (c, &v) in readout.iter().enumerate() {
        if v > readout[class] {
            class = c;
        }
    }
    Ref {
        class: class as u16,
        readout,
        spikes,
        sops,
        macs,
    }
}

/// splitmix64: the random source for weights, so that one proptest seed names a model.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn precision_range(p: Precision) -> (i64, i64) {
    match p {
        Precision::I4 => (-8, 7),
        Precision::I8 => (-128, 127),
        Precision::I16 => (-32768, 32767),
    }
}

/// A synaptic layer with random weights and neuron parameters.
pub fn synaptic(rng: &mut Rng, kind: Kind, shape: (usize, usize, usize), readout: bool) -> L {
    let (rows, cols) = matrix(kind, shape);
    let precision = [Precision::I4, Precision::I8, Precision::I16][rng.below(3) as usize];
    let sparse = rng.chance(50);
    let density = rng.range(0, 100) as u64;
    let (lo, hi) = precision_range(precision);
    let w: Vec<i32> = (0..rows * cols)
        .map(|_| {
            if rng.chance(density) {
                rng.range(lo, hi) as i32
            } else {
                0
            }
        })
        .collect();
    let width = if rng.chance(50) {
        Width::I16
    } else {
        Width::I32
    };
    let typical = (hi as i32).max(1);
    let per = |rng: &mut Rng, lo: i64, hi: i64| -> Vec<i32> {
        let n = if rng.chance(50) { 1 } else { cols };
        (0..n).map(|_| rng.range(lo, hi) as i32).collect()
    };
    let th_hi = (typical as i64 * rng.range(1, 4)).min(width.max() as i64);
    L {
        kind,
        precision,
        sparse,
        w,
        threshold: per(rng, 1, th_hi),
        bias: per(rng, -(typical as i64) / 4, typical as i64 / 4),
        leak: if rng.chance(40) {
            1 << 15
        } else {
            rng.range(0, 1 << 15) as u16
        },
        reset: if rng.chance(50) {
            Reset::Subtract
        } else {
            Reset::Zero
        },
        width,
        readout,
        // From a side generator, so that adding this field left older draws (and the golden
        // models built from them) unchanged.
        // Also from a side generator, for the same reason.
        ell: {
            let mut side = Rng(rng.0 ^ 0xE11_5EED);
            side.chance(35).then(|| EllSpec {
                index_bits: if cols <= 16 && side.chance(60) { 4 } else { 8 },
                extra: side.range(0, 2) as usize,
                seed: side.next(),
            })
        },
        inhibition: {
            let mut side = Rng(rng.0 ^ 0x1A7E_5EED);
            (!readout && side.chance(25)).then(|| side.range(0, typical as i64) as i32)
        },
    }
}

/// A random valid model and one input for it.
pub fn random_model(seed: u64) -> (M, Vec<u8>) {
    let mut rng = Rng(seed);
    let mut shape = (
        rng.range(1, 7) as usize,
        rng.range(1, 7) as usize,
        rng.range(1, 3) as usize,
    );
    let input_shape = shape;
    let direct = rng.chance(50);
    let encoding = if direct {
        Encoding::Direct
    } else {
        Encoding::Rate {
            seed: rng.next() as u32,
        }
    };
    let mut layers = vec![];
    let mut max_act = if direct { 255 } else { 1 };
    for i in 0..rng.range(0, 4) {
        let (h, w, _) = shape;
        let pool_ok = !(i == 0 && direct) && h.min(w) >= 1;
        let kind = match rng.below(4) {
            0 | 1 if pool_ok => {
                let k = rng.range(1, h.min(w).min(2) as i64) as usize;
                let s = rng.range(1, 2) as usize;
                if rng.chance(50) && max_act * k * k <= 255 {
                    max_act *= k * k;
                    Kind::Avg { k, s }
                } else {
                    Kind::Max { k, s }
                }
            }
            2 => Kind::Dense {
                outputs: rng.range(1, 12) as usize,
            },
            _ => {
                let k = rng.range(1, 3) as usize;
                let p = rng.range(0, k as i64 - 1) as usize;
                if h + 2 * p < k || w + 2 * p < k {
                    Kind::Dense {
                        outputs: rng.range(1, 12) as usize,
                    }
                } else {
                    Kind::Conv {
                        out: rng.range(1, 4) as usize,
                        k,
                        s: rng.range(1, 2) as usize,
                        p,
                    }
                }
            }
        };
        let layer = match kind {
            Kind::Avg { .. } | Kind::Max { .. } => L::pool(kind),
            _ => {
                max_act = 1;
                synaptic(&mut rng, kind, shape, false)
            }
        };
        layers.push(layer);
        shape = out_shape(kind, shape);
    }
    let classes = rng.range(1, 10) as usize;
    layers.push(synaptic(
        &mut rng,
        Kind::Dense { outputs: classes },
        shape,
        true,
    ));
    let n = input_shape.0 * input_shape.1 * input_shape.2;
    let zeros = rng.range(0, 100) as u64;
    let input = (0..n)
        .map(|_| {
            if rng.chance(zeros) {
                0
            } else {
                rng.below(256) as u8
            }
        })
        .collect();
    (
        M {
            timesteps: rng.range(1, 5) as u16,
            shape: input_shape,
            encoding,
            layers,
        },
        input,
    )
}
