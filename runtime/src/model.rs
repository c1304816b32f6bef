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
    /// Membranes (synaptic layers only); kept from one timestep to the next.
    pub mem: Region,
    /// Output activations: spikes, or pooled counts. A LIF layer followed by pooling writes
    /// the pooled counts here (see [`fuses_pool`]); the pooling layer's `act` is the same
    /// region. Live only from the layer's step to its consumer's, within one timestep.
    pub act: Region,
    /// Class scores (readout only); kept.
    pub score: Region,
    /// Scratch of the layer's own step: the direct-input current of one output row (i32 per
    /// neuron of the row) when it is recomputed at every timestep.
    pub aux: Region,
    /// Largest |input current| one neuron can receive from events in one step: the largest
    /// input value times what the weight rows can add to one column (`weights::check`; at
    /// most fan-in x largest |weight|), 0 for pooling, at most `u32::MAX` (more than any
    /// membrane holds; 32 bits keep the plan small on a microcontroller).
    pub bound: u32,
    /// Largest value an input event can have (1 for spikes; pooled counts can be larger).
    pub max_act: u32,
}

/// Memory to load a [`Model`] into in place, for a microcontroller's stack: a `static`
/// (`ModelSlot::new` is `const`) that [`ModelSlot::load`] decodes and validates a file
/// into, so that the model (about 2 KB on a 32-bit core) is never built on the stack and
/// moved. [`Model::from_bytes`] loads through one too; the result is the same.
///
/// ```
/// # use ember_runtime::{ModelSlot, Model};
/// # let bytes = ember_runtime::doc_example_model();
/// let mut slot = ModelSlot::new();
/// let model: &Model<'_> = slot.load(&bytes)?;
/// assert_eq!(model.input_len(), 16);
/// # Ok::<(), ember_runtime::Error>(())
/// ```
pub struct ModelSlot<'a>(Model<'a>);

impl<'a> ModelSlot<'a> {
    /// An empty slot.
    pub const fn new() -> Self {
        ModelSlot(Model::empty())
    }

    /// Checks and loads the model file `bytes` into the slot, as [`Model::from_bytes`] does,
    /// and returns it. On error the slot holds no usable model (a later `load` may fill it).
    pub fn load(&mut self, bytes: &'a [u8]) -> Result<&Model<'a>, Error> {
        let model = &mut self.0;
        format::decode_into(bytes, &mut model.desc)?;
        model.layout()?;
        Ok(model)
    }
}

impl Default for ModelSlot<'_> {
    fn default() -> Self {
        Self::new()
    }
}

/// A validated model, borrowing its weights from the file bytes.
#[derive(Debug, Clone)]
pub struct Model<'a> {
    pub(crate) desc: ModelDesc<'a>,
    pub(crate) plan: heapless::Vec<Plan, MAX_LAYERS>,
    /// Rate-coded input spikes for the current timestep (empty for direct input).
    pub(crate) input_act: Region,
    /// First-layer current of a direct-input model, i32 per neuron, computed once per
    /// inference (empty for rate input, and when the current is recomputed at every
    /// timestep: direct-input layers with 16-bit membranes).
    pub(crate) cache: Region,
    pub(crate) input: Dims,
    pub(crate) arena_bytes: usize,
}

fn mul(a: usize, b: usize) -> Result<usize, Error> {
    a.checked_mul(b).ok_or(Error::SizeOverflow)
}

fn align4(n: usize) -> Result<usize, Error> {
    n.checked_next_multiple_of(4).ok_or(Error::SizeOverflow)
}

/// Whether layer `i` is a LIF layer (without lateral inhibition) followed by pooling over
/// non-overlapping windows (kernel = stride). Such a layer adds each spike straight into
/// its window's pooled count as it fires (`lif::fire_pooled`), so that its spike map never
/// exists and the pooling layer has nothing left to do. Pooling sums (or maxes) the same
/// spikes either way, so the results are those of the two layers run one after the other.
pub(crate) fn fuses_pool(layers: &[Layer<'_>], i: usize) -> bool {
    let lif = match layers.get(i) {
        Some(Layer::Dense(d)) => matches!(d.neuron, Neuron::Lif(_)),
        Some(Layer::Conv2d(c)) => matches!(c.neuron, Neuron::Lif(_)),
        _ => false,
    };
    lif && matches!(
        layers.get(i + 1),
        Some(Layer::AvgPool(p) | Layer::MaxPool(p)) if p.kernel == p.stride
    )
}

/// Whether the direct-input layer's current is recomputed at every timestep instead of kept:
/// when the layer has 16-bit membranes. Those are chosen to save RAM, and the kept current
/// would take twice their bytes (an i32 per neuron).
pub(crate) fn recomputes_current(desc: &ModelDesc<'_>) -> bool {
    desc.input.encoding == Encoding::Direct
        && desc
            .layers
            .first()
            .and_then(|l| l.synapse())
            .is_some_and(|s| s.neuron.common().2 == Width::I16)
}

impl<'a> Model<'a> {
    /// Checks and loads a model file. The returned model borrows `bytes` (flash, on a
    /// microcontroller); nothing is copied. A model is about 2 KB on a 32-bit core (its
    /// layer list and plan); [`ModelSlot`] loads one in place, without the stack this
    /// return by value takes.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        let mut slot = ModelSlot::new();
        slot.load(bytes)?;
        Ok(slot.0)
    }

    /// Validates an already decoded description.
    pub fn from_desc(desc: ModelDesc<'a>) -> Result<Self, Error> {
        let mut model = Model::empty();
        model.desc = desc;
        model.layout()?;
        Ok(model)
    }

    /// A model with no layers: not valid, only something to load into.
    const fn empty() -> Self {
        let none = Region { off: 0, len: 0 };
        Model {
            desc: ModelDesc::empty(),
            plan: heapless::Vec::new(),
            input_act: none,
            cache: none,
            input: Dims { h: 0, w: 0, c: 0 },
            arena_bytes: 0,
        }
    }

    /// Validates `self.desc` and plans the arena, in place: fills every other field.
    fn layout(&mut self) -> Result<(), Error> {
        let desc = &self.desc;
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
        let recompute = recomputes_current(desc);
        // Sizes first (offsets 0), then `place` lays the regions out.
        let mut input_act = Region {
            off: 0,
            len: if direct { 0 } else { input_len },
        };
        let mut cache = Region::default();
        let plan = &mut self.plan;
        plan.clear();
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
                    bound = check_synapse(li, &d.weights, rows, cols, max_act, i == 0 && direct)?;
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
                    bound = check_synapse(li, &c.weights, rows, cols, max_act, i == 0 && direct)?;
                    let width = check_neuron(li, &c.neuron, cols, last)?;
                    // A fused readout's groups are its outputs: a dense layer's only.
                    if matches!(c.neuron, Neuron::Fused(_)) {
                        return Err(Error::BadTopology);
                    }
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
            let len = |n| Region { off: 0, len: n };
            if i == 0 && direct && !recompute {
                cache = len(mul(out_len, 4)?);
            }
            // The current of one output row (see `Plan::aux`).
            let scratch = if i == 0 && recompute {
                mul(mul(output.w, output.c)?, 4)?
            } else {
                0
            };
            let _ = plan.push(Plan {
                input: dims,
                output,
                mem: len(match mem_width {
                    Some(wd) => mul(out_len, wd.bytes())?,
                    None => 0,
                }),
                act: len(if last { 0 } else { out_len }),
                score: len(if last { mul(out_len, 4)? } else { 0 }),
                aux: len(scratch),
                bound: u32::try_from(bound).unwrap_or(u32::MAX),
                max_act: input_max,
            });
            if mem_width.is_some() {
                max_act = 1;
            }
            dims = output;
        }
        let arena_bytes = place(&desc.layers, plan, &mut input_act, &mut cache)?;
        if u32::try_from(arena_bytes).is_err() {
            return Err(Error::SizeOverflow);
        }
        self.input_act = input_act;
        self.cache = cache;
        self.input = input;
        self.arena_bytes = arena_bytes;
        Ok(())
    }

    /// Bytes of working memory an inference needs (see [`crate::Engine::new`]).
    ///
    /// The arena holds what lives from one timestep to the next (membranes, class scores,
    /// the kept direct-input current), then what only lives within a timestep (input spikes,
    /// each layer's spike map or pooled counts from the layer's step to its consumer's, a
    /// layer's scratch) laid out so that regions that are never live at the same time share
    /// bytes. A direct-input layer with 16-bit membranes recomputes its current at every
    /// timestep instead of keeping it, and a LIF layer followed by pooling writes the pooled
    /// counts directly; both save RAM without changing any result.
    pub fn arena_bytes(&self) -> usize {
        self.arena_bytes
    }

    /// Bytes of one input sample.
    pub fn input_len(&self) -> usize {
        self.input.len()
    }

    /// Number of class scores the readout produces (for a fused readout, every group's).
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
/// overflow i32 (255 x what the rows can add to one column, see `weights::check`: at most
/// fan-in x 255 x max|w|). Returns `max_act` times that: the bound on the current one neuron
/// receives from events in one step.
fn check_synapse(
    layer: u8,
    w: &format::Weights<'_>,
    rows: usize,
    cols: usize,
    max_act: usize,
    direct: bool,
) -> Result<u64, Error> {
    let per_event = weights::check(w, rows, cols).ok_or(Error::BadWeights { layer })?;
    let bound = per_event.saturating_mul(max_act as u64);
    if direct && bound > i32::MAX as u64 {
        return Err(Error::BadParameter { layer });
    }
    Ok(bound)
}

/// Gives every region of the plan its offset and returns the arena's size. First the regions
/// that live across timesteps, one after the other: the kept direct-input current, then each
/// layer's membranes and class scores. Then the ones that live within a timestep, each at the
/// lowest offset where it overlaps no region placed before it that is live at the same time
/// (first fit, in layer order): the input spikes (live in layer 0's step), each layer's
/// output (from its step to the step of the layer that reads it) and scratch (its own step).
fn place(
    layers: &[Layer<'_>],
    plan: &mut [Plan],
    input_act: &mut Region,
    cache: &mut Region,
) -> Result<usize, Error> {
    let mut next = 0usize;
    let mut take = |r: &mut Region| -> Result<(), Error> {
        r.off = align4(next)?;
        next = r.off.checked_add(r.len).ok_or(Error::SizeOverflow)?;
        Ok(())
    };
    take(cache)?;
    for p in plan.iter_mut() {
        take(&mut p.mem)?;
        take(&mut p.score)?;
    }
    let base = align4(next)?;
    // A fused LIF layer's output is the pooled counts (see `fuses_pool`).
    for i in 0..plan.len().saturating_sub(1) {
        if fuses_pool(layers, i) {
            plan[i].act.len = plan[i + 1].act.len;
        }
    }
    // Transient number t: 0 the input spikes, 1 + 2i layer i's output, 2 + 2i its scratch;
    // with the steps (first, last) it is live in.
    let n = plan.len();
    let transient = |plan: &[Plan], input_act: &Region, t: usize| -> (Region, usize, usize) {
        let i = (t.max(1) - 1) / 2;
        match t {
            0 => (*input_act, 0, 0),
            _ if t % 2 == 0 => (plan[i].aux, i, i),
            // A pooling layer fed by a fused LIF layer shares that layer's output.
            _ if i > 0 && fuses_pool(layers, i - 1) => (Region::default(), i, i),
            _ if fuses_pool(layers, i) => (plan[i].act, i, i + 2),
            _ => (plan[i].act, i, i + 1),
        }
    };
    let mut end = base;
    for t in 0..1 + 2 * n {
        let (mut r, first, last) = transient(plan, input_act, t);
        if r.len == 0 {
            continue;
        }
        r.off = base;
        // Move past every earlier region live at the same time that overlaps, until none
        // does (each move goes strictly up, so this ends).
        let mut moved = true;
        while moved {
            moved = false;
            for u in 0..t {
                let r_end = r.off.checked_add(r.len).ok_or(Error::SizeOverflow)?;
                let (q, f, l) = transient(plan, input_act, u);
                let overlaps = q.len > 0 && r.off < q.end() && q.off < r_end;
                if overlaps && first <= l && f <= last {
                    r.off = align4(q.end())?;
                    moved = true;
                }
            }
        }
        end = end.max(r.off.checked_add(r.len).ok_or(Error::SizeOverflow)?);
        let i = (t.max(1) - 1) / 2;
        match t {
            0 => *input_act = r,
            _ if t % 2 == 0 => plan[i].aux = r,
            _ => plan[i].act = r,
        }
    }
    for i in 1..n {
        if fuses_pool(layers, i - 1) {
            plan[i].act = plan[i - 1].act;
        }
    }
    align4(end)
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
    match n {
        Neuron::Lateral(lat) if lat.inhibition < 0 => return Err(bad),
        Neuron::GroupLateral(g)
            if g.inhibition < 0 || g.group == 0 || channels % g.group as usize != 0 =>
        {
            return Err(bad)
        }
        Neuron::Fused(f) => {
            if f.classes == 0 || channels % f.classes as usize != 0 {
                return Err(bad);
            }
            let groups = channels / f.classes as usize;
            check_channelwise(&f.prior, groups, 0, i32::MAX).ok_or(bad)?;
        }
        _ => {}
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
