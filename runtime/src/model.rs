//! Loading a model: decode, then validate every size, shape, offset and parameter once, so
//! that inference can index without failing; and plan the arena the engine will run in.

use crate::format::{self, Channelwise, Encoding, Layer, ModelDesc, Neuron, Width, MAX_LAYERS};
use crate::{weights, Error};

/// Height, width and channels of an activation map, as sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dims {
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

impl Dims {
    /// Elements in the map (cannot overflow: checked when the model was planned).
    pub fn len(&self) -> usize {
        self.h * self.w * self.c
    }
}

/// A byte range of the arena.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Region {
    pub off: usize,
    pub len: usize,
}

impl Region {
    pub fn end(&self) -> usize {
        self.off + self.len
    }
}

/// What the engine needs to know about one layer, worked out at load time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub input: Dims,
    pub output: Dims,
    /// Membranes (synaptic layers only).
    pub mem: Region,
    /// Output activations: spikes, or pooled counts.
    pub act: Region,
    /// Class scores (readout only).
    pub score: Region,
    /// Largest |input current| one neuron can receive from events in one step:
    /// fan-in x largest input value x largest |weight| (0 for pooling), at most `u32::MAX`
    /// (more than any membrane holds; 32 bits keep the plan small on a microcontroller).
    pub bound: u32,
    /// Largest value an input event can have (1 for spikes; pooled counts can be larger).
    pub max_act: u32,
}

/// A validated model, borrowing its weights from the file bytes.
#[derive(Debug, Clone)]
pub struct Model<'a> {
    pub(crate) desc: ModelDesc<'a>,
    pub(crate) plan: heapless::Vec<Plan, MAX_LAYERS>,
    /// Rate-coded input spikes for the current timestep (empty for direct input).
    pub(crate) input_act: Region,
    /// First-layer current of a direct-input model, i32 per neuron (empty for rate input).
    pub(crate) cache: Region,
    pub(crate) input: Dims,
    pub(crate) arena_bytes: usize,
}

/// Keeps a running arena offset, aligning every region to 4 bytes.
struct Layout {
    next: usize,
}

impl Layout {
    fn take(&mut self, len: usize) -> Result<Region, Error> {
        let off = self
            .next
            .checked_next_multiple_of(4)
            .ok_or(Error::SizeOverflow)?;
        self.next = off.checked_add(len).ok_or(Error::SizeOverflow)?;
        Ok(Region { off, len })
    }
}

fn mul(a: usize, b: usize) -> Result<usize, Error> {
    a.checked_mul(b).ok_or(Error::SizeOverflow)
}

impl<'a> Model<'a> {
    /// Checks and loads a model file. The returned model borrows `bytes` (flash, on a
    /// microcontroller); nothing is copied.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        let desc = format::decode(bytes)?;
        Self::from_desc(desc)
    }

    /// Validates an already decoded description.
    pub fn from_desc(desc: ModelDesc<'a>) -> Result<Self, Error> {
        if desc.timesteps == 0 {
            return Err(Error::ZeroTimesteps);
        }
        let n = desc.layers.len();
        if n == 0 {
            return Err(Error::BadTopology);
        }
        let s = desc.input.shape;
        let input = Dims {
            h: s.height as usize,
            w: s.width as usize,
            c: s.channels as usize,
        };
        if input.h == 0 || input.w == 0 || input.c == 0 {
            return Err(Error::BadDimension { layer: 0 });
        }
        let input_len = mul(mul(input.h, input.w)?, input.c)?;
        let direct = desc.input.encoding == Encoding::Direct;
        let mut layout = Layout { next: 0 };
        let input_act = layout.take(if direct { 0 } else { input_len })?;
        let mut cache = Region::default();
        let mut plan = heapless::Vec::new();
        let mut dims = input;
        // Largest value an activation can carry into the next layer.
        let mut max_act: usize = if direct { 255 } else { 1 };
        for (i, layer) in desc.layers.iter().enumerate() {
            let li = i as u8;
            let last = i + 1 == n;
            let input_max = max_act as u32;
            let bad_dim = Error::BadDimension { layer: li };
            let mut bound = 0;
            let (output, mem_width) = match layer {
                Layer::Dense(d) => {
                    let cols = d.outputs as usize;
                    if cols == 0 {
                        return Err(bad_dim);
                    }
                    let rows = mul(mul(dims.h, dims.w)?, dims.c)?;
                    bound =
                        check_synapse(li, &d.weights, rows, cols, rows, max_act, i == 0 && direct)?;
                    let width = check_neuron(li, &d.neuron, cols, last)?;
                    (
                        Dims {
                            h: 1,
                            w: 1,
                            c: cols,
                        },
                        Some(width),
                    )
                }
                Layer::Conv2d(c) => {
                    let (k, st, p) = (c.kernel as usize, c.stride as usize, c.padding as usize);
                    let cols = c.out_channels as usize;
                    if k == 0
                        || st == 0
                        || p >= k
                        || cols == 0
                        || dims.h + 2 * p < k
                        || dims.w + 2 * p < k
                    {
                        return Err(bad_dim);
                    }
                    let out = Dims {
                        h: (dims.h + 2 * p - k) / st + 1,
                        w: (dims.w + 2 * p - k) / st + 1,
                        c: cols,
                    };
                    let rows = mul(mul(k, k)?, dims.c)?;
                    bound =
                        check_synapse(li, &c.weights, rows, cols, rows, max_act, i == 0 && direct)?;
                    let width = check_neuron(li, &c.neuron, cols, last)?;
                    (out, Some(width))
                }
                Layer::AvgPool(p) | Layer::MaxPool(p) => {
                    let (k, st) = (p.kernel as usize, p.stride as usize);
                    if last || (i == 0 && direct) {
                        return Err(Error::BadTopology);
                    }
                    if k == 0 || st == 0 || dims.h < k || dims.w < k {
                        return Err(bad_dim);
                    }
                    if matches!(layer, Layer::AvgPool(_)) {
                        max_act = mul(max_act, k * k)?;
                        if max_act > 255 {
                            return Err(bad_dim);
                        }
                    }
                    (
                        Dims {
                            h: (dims.h - k) / st + 1,
                            w: (dims.w - k) / st + 1,
                            c: dims.c,
                        },
                        None,
                    )
                }
            };
            if [output.h, output.w, output.c]
                .iter()
                .any(|&d| d > u16::MAX as usize)
            {
                return Err(bad_dim);
            }
            let out_len = mul(mul(output.h, output.w)?, output.c)?;
            if i == 0 && direct {
                cache = layout.take(mul(out_len, 4)?)?;
            }
            let mem = layout.take(match mem_width {
                Some(wd) => mul(out_len, wd.bytes())?,
                None => 0,
            })?;
            let act = layout.take(if last { 0 } else { out_len })?;
            let score = layout.take(if last { mul(out_len, 4)? } else { 0 })?;
            if mem_width.is_some() {
                max_act = 1;
            }
            // Cannot fail: at most MAX_LAYERS layers were decoded.
            let _ = plan.push(Plan {
                input: dims,
                output,
                mem,
                act,
                score,
                bound: u32::try_from(bound).unwrap_or(u32::MAX),
                max_act: input_max,
            });
            dims = output;
        }
        let arena_bytes = layout
            .next
            .checked_next_multiple_of(4)
            .ok_or(Error::SizeOverflow)?;
        if u32::try_from(arena_bytes).is_err() {
            return Err(Error::SizeOverflow);
        }
        Ok(Model {
            desc,
            plan,
            input_act,
            cache,
            input,
            arena_bytes,
        })
    }

    /// Bytes of working memory an inference needs (see [`crate::Engine::new`]).
    pub fn arena_bytes(&self) -> usize {
        self.arena_bytes
    }

    /// Bytes of one input sample.
    pub fn input_len(&self) -> usize {
        self.input.len()
    }

    /// Number of class scores the readout produces.
    pub fn classes(&self) -> usize {
        self.plan.last().map_or(0, |p| p.output.len())
    }

    /// Default timesteps per inference.
    pub fn timesteps(&self) -> u16 {
        self.desc.timesteps
    }

    /// The decoded description (layers, parameters, borrowed weight blobs).
    pub fn desc(&self) -> &ModelDesc<'a> {
        &self.desc
    }

    /// Input and output shape of layer `i`, if it exists.
    pub fn layer_shapes(&self, i: usize) -> Option<(format::Shape, format::Shape)> {
        let shape = |d: Dims| format::Shape {
            height: d.h as u16,
            width: d.w as u16,
            channels: d.c as u16,
        };
        self.plan.get(i).map(|p| (shape(p.input), shape(p.output)))
    }

    /// Number of neurons (outputs) of layer `i`, if it exists.
    pub fn layer_outputs(&self, i: usize) -> Option<usize> {
        self.plan.get(i).map(|p| p.output.len())
    }
}

/// Checks a weight matrix and, for the direct-input layer, that its input current cannot
/// overflow i32 (`fan_in * 255 * max|w|`). Returns the bound `fan_in * max_act * max|w|` on
/// the current one neuron receives in one step.
fn check_synapse(
    layer: u8,
    w: &format::Weights<'_>,
    rows: usize,
    cols: usize,
    fan_in: usize,
    max_act: usize,
    direct: bool,
) -> Result<u64, Error> {
    let (_, max_abs) = weights::check(w, rows, cols).ok_or(Error::BadWeights { layer })?;
    let bound = (fan_in as u64)
        .saturating_mul(max_act as u64)
        .saturating_mul(max_abs as u64);
    if direct && bound > i32::MAX as u64 {
        return Err(Error::BadParameter { layer });
    }
    Ok(bound)
}

/// Checks neuron parameters against the layer's channel count and returns the membrane width.
fn check_neuron(layer: u8, n: &Neuron<'_>, channels: usize, last: bool) -> Result<Width, Error> {
    let bad = Error::BadParameter { layer };
    match (n.lif(), last) {
        (Some(l), false) => {
            check_channelwise(&l.threshold, channels, 1, l.membrane.max()).ok_or(bad)?
        }
        (None, true) => {}
        _ => return Err(Error::BadTopology),
    }
    if let Neuron::Lateral(lat) = n {
        if lat.inhibition < 0 {
            return Err(bad);
        }
    }
    let (leak, bias, width) = n.common();
    check_channelwise(bias, channels, width.min(), width.max()).ok_or(bad)?;
    if leak.to_bits() > format::Leak::NONE.to_bits() {
        return Err(bad);
    }
    Ok(width)
}

fn check_channelwise(p: &Channelwise<'_>, channels: usize, lo: i32, hi: i32) -> Option<()> {
    let ok = |v: i32| (lo..=hi).contains(&v);
    match p {
        Channelwise::Uniform(v) => ok(*v).then_some(()),
        Channelwise::PerChannel(b) => (b.len() == channels.checked_mul(4)?
            && (0..channels).all(|c| ok(p.get(c))))
        .then_some(()),
    }
}
