//! The `.ember` model file: a fixed header followed by a postcard-encoded [`ModelDesc`].
//!
//! ```text
//! offset  size  field
//!      0     4  magic "EMBR"
//!      4     2  format version, little endian (this runtime: VERSION)
//!      6     2  reserved, zero
//!      8     4  payload length in bytes, little endian
//!     12     4  CRC-32 (ISO-HDLC, as zlib) of the payload, little endian
//!     16     n  payload: postcard encoding of ModelDesc
//! ```
//!
//! Weight, threshold and bias arrays are stored as little-endian byte blobs (postcard would
//! write multi-byte integers as varints), so a loaded model borrows them in place from the
//! file, which on a microcontroller is flash. New layer kinds are added as new enum variants
//! at the end, so files written before them keep their meaning.
//!
//! Layout conventions (the trainer's exporter follows them):
//! - Activations are stored channels-last (HWC). A dense layer reads its input flattened in
//!   HWC order.
//! - A dense layer's weights are a matrix of `inputs` rows by `outputs` columns (input-major,
//!   so one arriving spike adds one contiguous row).
//! - A conv layer's weights are `kernel * kernel * in_channels` rows (ordered ky, kx, c_in)
//!   by `out_channels` columns.
//! - Average pooling *sums* its window; the trainer folds the 1/k² into the next layer's
//!   threshold and weights scale.
//! - A matrix is stored one of three ways ([`Storage`]): dense (every entry), CSR (`Sparse`:
//!   only kept entries, with u32 row pointers and u16 column indices: 6 bytes of index per
//!   row plus 2 per entry), or row-balanced ELLPACK (`Ell`: every row keeps the same number
//!   of entries `per_row`, so row `r`'s entries are entries `r * per_row .. (r + 1) * per_row`
//!   and no row pointers are stored; column indices take 4 bits when the matrix has at most
//!   16 columns, 8 bits when it has at most 256). A row with fewer weights than `per_row` is
//!   padded with entries of value 0 (any column below the column count). For REF-CONV's
//!   1568x10 int8 readout at 80 % sparsity (2 weights per row): dense 15,680 bytes, CSR
//!   6,276 + 6,272 + 3,136 = 15,684, Ell 1,568 + 3,136 = 4,704.

use serde::{Deserialize, Serialize};

/// First four bytes of every model file.
pub const MAGIC: [u8; 4] = *b"EMBR";
/// Format version written and read by this runtime.
pub const VERSION: u16 = 1;
/// Length of the fixed header that precedes the payload.
pub const HEADER_LEN: usize = 16;
/// Most layers a model may have.
pub const MAX_LAYERS: usize = 16;

/// CRC-32 used for the payload checksum (the zlib / PNG polynomial).
pub(crate) const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Everything a model file says, borrowing its blobs from the file's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelDesc<'a> {
    /// Free-form model name, for logs and reports.
    pub name: &'a str,
    /// Default number of timesteps per inference.
    pub timesteps: u16,
    /// Input shape and how pixels become the first layer's drive.
    pub input: Input,
    /// Layers in execution order; the last one is a dense or conv layer with a readout neuron.
    #[serde(borrow)]
    pub layers: heapless::Vec<Layer<'a>, MAX_LAYERS>,
}

/// Shape of an activation map: height x width x channels, stored channels-last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Shape {
    /// Rows.
    pub height: u16,
    /// Columns.
    pub width: u16,
    /// Channels.
    pub channels: u16,
}

/// The network's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// Shape of one sample, one u8 per element.
    pub shape: Shape,
    /// How the u8 values enter the network.
    pub encoding: Encoding,
}

/// How input values drive the first layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encoding {
    /// The u8 values are multiplied into the first layer's weights (MACs); the resulting
    /// current drives the first layer at every timestep. The runtime computes it once per
    /// inference and keeps it (4 bytes per neuron of the layer), or, when the layer has 16-bit
    /// membranes, computes it again at every timestep instead of keeping it (the same
    /// integers; the MACs are then counted at every timestep).
    Direct,
    /// At every timestep each element spikes with probability value/256, drawn from a
    /// xorshift32 generator restarted from `seed` at each inference (0 means the default seed).
    Rate {
        /// Generator seed.
        seed: u32,
    },
}

/// One layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layer<'a> {
    /// Fully connected layer followed by its neurons.
    Dense(#[serde(borrow)] Dense<'a>),
    /// 2-D convolution (square kernel, no dilation) followed by its neurons.
    Conv2d(#[serde(borrow)] Conv2d<'a>),
    /// Non-overlapping or strided average pooling; sums its window (see the module docs).
    AvgPool(Pool),
    /// Max pooling over spikes: an output spikes when any input in its window does.
    MaxPool(Pool),
}

/// Kernel, stride and padding of a convolution.
pub(crate) type ConvGeometry = (u8, u8, u8);

/// The parts of a synaptic layer (dense or conv) the engine needs.
pub(crate) struct SynapseRef<'l, 'a> {
    pub weights: &'l Weights<'a>,
    /// `None` for a dense layer.
    pub conv: Option<ConvGeometry>,
    pub neuron: &'l Neuron<'a>,
}

impl<'a> Layer<'a> {
    /// Weights, geometry and neurons of a synaptic layer; `None` for pooling.
    pub(crate) fn synapse(&self) -> Option<SynapseRef<'_, 'a>> {
        let (weights, conv, neuron) = match self {
            Layer::Dense(d) => (&d.weights, None, &d.neuron),
            Layer::Conv2d(c) => (&c.weights, Some((c.kernel, c.stride, c.padding)), &c.neuron),
            Layer::AvgPool(_) | Layer::MaxPool(_) => return None,
        };
        Some(SynapseRef {
            weights,
            conv,
            neuron,
        })
    }
}

/// A fully connected layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dense<'a> {
    /// Number of output neurons.
    pub outputs: u16,
    /// `inputs x outputs` weights.
    #[serde(borrow)]
    pub weights: Weights<'a>,
    /// The neurons that integrate this layer's current.
    #[serde(borrow)]
    pub neuron: Neuron<'a>,
}

/// A 2-D convolution over a channels-last input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv2d<'a> {
    /// Output channels.
    pub out_channels: u16,
    /// Kernel height and width.
    pub kernel: u8,
    /// Stride in both directions.
    pub stride: u8,
    /// Zero padding on every side.
    pub padding: u8,
    /// `kernel * kernel * in_channels` rows by `out_channels` columns.
    #[serde(borrow)]
    pub weights: Weights<'a>,
    /// The neurons that integrate this layer's current.
    #[serde(borrow)]
    pub neuron: Neuron<'a>,
}

/// A pooling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// Window height and width.
    pub kernel: u8,
    /// Step between windows.
    pub stride: u8,
}

/// Bits per stored weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Precision {
    /// Signed 4-bit, two per byte, low nibble first.
    I4,
    /// Signed 8-bit.
    I8,
    /// Signed 16-bit little endian.
    I16,
}

impl Precision {
    /// Bits per weight.
    pub const fn bits(self) -> usize {
        match self {
            Precision::I4 => 4,
            Precision::I8 => 8,
            Precision::I16 => 16,
        }
    }

    /// Bytes needed to store `count` weights.
    pub const fn bytes_for(self, count: usize) -> Option<usize> {
        match count.checked_mul(self.bits()) {
            Some(bits) => Some(bits.div_ceil(8)),
            None => None,
        }
    }
}

/// A weight matrix of `rows x cols` entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weights<'a> {
    /// Bits per weight.
    pub precision: Precision,
    /// Dense, CSR-sparse or row-balanced sparse storage.
    #[serde(borrow)]
    pub storage: Storage<'a>,
}

/// How a weight matrix is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Storage<'a> {
    /// Every entry, row-major, packed at the precision's width.
    Dense {
        /// `rows * cols` packed weights.
        #[serde(with = "serde_bytes")]
        values: &'a [u8],
    },
    /// Compressed sparse rows: only non-zero entries are kept.
    Sparse {
        /// `rows + 1` u32 LE offsets into `cols`/`values`, non-decreasing, starting at 0.
        #[serde(with = "serde_bytes")]
        row_ptr: &'a [u8],
        /// One u16 LE column index per kept entry, each below the matrix's column count.
        #[serde(with = "serde_bytes")]
        cols: &'a [u8],
        /// One packed weight per kept entry.
        #[serde(with = "serde_bytes")]
        values: &'a [u8],
    },
    /// Row-balanced sparse ("ELLPACK"): every row keeps the same number of entries, so row r's
    /// entries are entries r*per_row .. (r+1)*per_row and no row pointers are stored.
    Ell {
        /// Entries kept per row (may be 0).
        per_row: u16,
        /// Bits per column index: 4 (two per byte, low nibble first, for matrices of at most
        /// 16 columns) or 8 (at most 256 columns).
        index_bits: u8,
        /// rows*per_row column indices, packed at index_bits, each below the matrix's column
        /// count.
        #[serde(with = "serde_bytes")]
        cols: &'a [u8],
        /// rows*per_row weights packed at the layer's precision (padding entries are allowed:
        /// any index, value 0).
        #[serde(with = "serde_bytes")]
        values: &'a [u8],
    },
}

/// The neurons behind a synaptic layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Neuron<'a> {
    /// Leaky integrate-and-fire: emits spikes to the next layer.
    Lif(#[serde(borrow)] Lif<'a>),
    /// Non-spiking accumulator; its membrane, summed over the timesteps, gives the class
    /// scores. Only the last layer has one.
    Readout(#[serde(borrow)] Readout<'a>),
    /// Leaky integrate-and-fire with lateral inhibition (winner-take-all competition, as in
    /// unsupervised STDP networks): emits spikes like [`Neuron::Lif`].
    Lateral(#[serde(borrow)] Lateral<'a>),
    /// Lateral inhibition within groups of neurons only (the ensembles of a multimodal
    /// network, each competing inside itself): emits spikes like [`Neuron::Lif`].
    GroupLateral(#[serde(borrow)] GroupLateral<'a>),
    /// A readout whose class scores come in groups (one per ensemble of a multimodal
    /// network) that are fused into one prediction. Only the last layer has one.
    Fused(#[serde(borrow)] Fused<'a>),
}

impl<'a> Neuron<'a> {
    /// The LIF parameters of a spiking neuron; `None` for a readout.
    pub fn lif(&self) -> Option<&Lif<'a>> {
        match self {
            Neuron::Lif(l)
            | Neuron::Lateral(Lateral { lif: l, .. })
            | Neuron::GroupLateral(GroupLateral { lif: l, .. }) => Some(l),
            Neuron::Readout(_) | Neuron::Fused(_) => None,
        }
    }

    /// Leak, bias and membrane width, common to every kind.
    pub(crate) fn common(&self) -> (Leak, &Channelwise<'a>, Width) {
        match self {
            Neuron::Readout(r) | Neuron::Fused(Fused { readout: r, .. }) => {
                (r.leak, &r.bias, r.membrane)
            }
            Neuron::Lif(l)
            | Neuron::Lateral(Lateral { lif: l, .. })
            | Neuron::GroupLateral(GroupLateral { lif: l, .. }) => (l.leak, &l.bias, l.membrane),
        }
    }
}

/// LIF neurons that inhibit each other: after the neurons of a layer fire at a timestep, every
/// neuron's membrane drops by `inhibition` for each *other* neuron of the layer that fired
/// (saturating). Each such drop counts as one synaptic operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lateral<'a> {
    /// The neurons' own parameters.
    #[serde(borrow)]
    pub lif: Lif<'a>,
    /// Membrane drop per spike of another neuron, in weight units, at least 0.
    pub inhibition: i32,
}

/// [`Lateral`] inhibition inside consecutive groups of `group` neurons (in the layer's
/// channels-last output order): a spike lowers the membranes of the other neurons of its own
/// group only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupLateral<'a> {
    /// The neurons' own parameters.
    #[serde(borrow)]
    pub lif: Lif<'a>,
    /// Membrane drop per spike of another neuron of the group, in weight units, at least 0.
    pub inhibition: i32,
    /// Neurons per group, at least 1, dividing the layer's neuron count.
    pub group: u16,
}

/// A readout of `groups x classes` outputs (group-major): group g's score for class c is
/// output `g * classes + c`. Each group's scores are read as counts of evidence (negative
/// ones count as 0) smoothed with `prior_g` pseudo-counts per class, and the class is the arg
/// max (first on ties) of the product over groups of `(s_gc + prior_g) / (S_g + classes
/// prior_g)`, `S_g` the group's total: a group that saw little evidence in this inference
/// (a noisy input that made its neurons fire less) counts less. Computed in integers as the
/// product of `s_gc + prior_g` (the denominators do not depend on c), in u64, saturating:
/// exact for two groups. The readout values reported are the groups' raw scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fused<'a> {
    /// The accumulator that produces the scores.
    #[serde(borrow)]
    pub readout: Readout<'a>,
    /// Classes per group, at least 1, dividing the layer's output count.
    pub classes: u16,
    /// Pseudo-count of each group (one value per group, each at least 0; `Uniform` for the
    /// same in every group).
    #[serde(borrow)]
    pub prior: Channelwise<'a>,
}

/// Leaky integrate-and-fire parameters, in weight units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lif<'a> {
    /// Firing threshold (membrane >= threshold spikes), strictly positive.
    #[serde(borrow)]
    pub threshold: Channelwise<'a>,
    /// Added to the membrane at every timestep.
    #[serde(borrow)]
    pub bias: Channelwise<'a>,
    /// Membrane multiplier applied at the start of every timestep.
    pub leak: Leak,
    /// What a spike does to the membrane.
    pub reset: Reset,
    /// Membrane storage width.
    pub membrane: Width,
}

/// Readout accumulator parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readout<'a> {
    /// Added to the membrane at every timestep.
    #[serde(borrow)]
    pub bias: Channelwise<'a>,
    /// Membrane multiplier applied at the start of every timestep.
    pub leak: Leak,
    /// Membrane storage width.
    pub membrane: Width,
}

/// A per-layer or per-channel integer parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Channelwise<'a> {
    /// The same value for every channel.
    Uniform(i32),
    /// One i32 LE per output channel.
    PerChannel(#[serde(with = "serde_bytes")] &'a [u8]),
}

impl Channelwise<'_> {
    /// The value for channel `c`; `c` must be below the channel count the model was
    /// validated with.
    #[inline]
    pub(crate) fn get(&self, c: usize) -> i32 {
        match self {
            Channelwise::Uniform(v) => *v,
            Channelwise::PerChannel(bytes) => {
                let b = &bytes[4 * c..4 * c + 4];
                i32::from_le_bytes([b[0], b[1], b[2], b[3]])
            }
        }
    }
}

/// Membrane leak as an unsigned Q1.15 multiplier in [0, 1]: `u <- floor(u * leak)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Leak(u16);

impl Leak {
    /// No leak: the membrane keeps its value.
    pub const NONE: Leak = Leak(1 << 15);
    /// Full leak: the membrane forgets its value at every step (a readout with this leak
    /// scores the sum of its per-step inputs).
    pub const ZERO: Leak = Leak(0);

    /// The leak multiplier as a fixed-point number.
    pub fn to_fixed(self) -> fixed::types::U1F15 {
        fixed::types::U1F15::from_bits(self.0)
    }

    /// A leak from a fixed-point multiplier; `None` above 1.
    pub fn from_fixed(m: fixed::types::U1F15) -> Option<Leak> {
        (m.to_bits() <= 1 << 15).then_some(Leak(m.to_bits()))
    }

    /// The raw Q1.15 bits.
    pub const fn to_bits(self) -> u16 {
        self.0
    }
}

/// What happens to the membrane when the neuron spikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Reset {
    /// Soft reset: subtract the threshold.
    Subtract,
    /// Hard reset: set the membrane to zero.
    Zero,
}

/// Membrane storage width; every update saturates at its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Width {
    /// 16-bit, halves the RAM of the neuron state.
    I16,
    /// 32-bit.
    I32,
}

impl Width {
    /// Bytes per membrane.
    pub const fn bytes(self) -> usize {
        match self {
            Width::I16 => 2,
            Width::I32 => 4,
        }
    }

    /// Smallest representable membrane value.
    pub const fn min(self) -> i32 {
        match self {
            Width::I16 => i16::MIN as i32,
            Width::I32 => i32::MIN,
        }
    }

    /// Largest representable membrane value.
    pub const fn max(self) -> i32 {
        match self {
            Width::I16 => i16::MAX as i32,
            Width::I32 => i32::MAX,
        }
    }
}

/// Writes `desc` as a complete model file (header and payload) into `out`, returning the
/// number of bytes written. Needs no allocator; the trainer and the tests use it.
pub fn encode(desc: &ModelDesc<'_>, out: &mut [u8]) -> Result<usize, crate::Error> {
    if out.len() < HEADER_LEN {
        return Err(crate::Error::BufferTooSmall);
    }
    let (header, body) = out.split_at_mut(HEADER_LEN);
    let payload_len = postcard::to_slice(desc, body)
        .map_err(|_| crate::Error::BufferTooSmall)?
        .len();
    let payload = &body[..payload_len];
    let len32 = u32::try_from(payload_len).map_err(|_| crate::Error::SizeOverflow)?;
    header[0..4].copy_from_slice(&MAGIC);
    header[4..6].copy_from_slice(&VERSION.to_le_bytes());
    header[6..8].copy_from_slice(&[0, 0]);
    header[8..12].copy_from_slice(&len32.to_le_bytes());
    header[12..16].copy_from_slice(&CRC.checksum(payload).to_le_bytes());
    Ok(HEADER_LEN + payload_len)
}

/// Checks the header and checksum and decodes the payload into `desc`, in place, without
/// validating shapes. On error `desc` holds whatever was decoded so far.
///
/// The same decoding as `postcard::take_from_bytes::<ModelDesc>` (every error identical),
/// except that each layer is decoded straight into `desc.layers`: the serde-derived path
/// builds the 16-layer list (about 1 KB on a 32-bit core) on the stack and moves it
/// through several frames, several KB of stack on a microcontroller.
pub(crate) fn decode_into<'a>(
    bytes: &'a [u8],
    desc: &mut ModelDesc<'a>,
) -> Result<(), crate::Error> {
    use crate::Error;
    if bytes.len() < 4 {
        return Err(Error::Truncated);
    }
    if bytes[0..4] != MAGIC {
        return Err(Error::BadMagic);
    }
    if bytes.len() < HEADER_LEN {
        return Err(Error::Truncated);
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if version != VERSION {
        return Err(Error::UnsupportedVersion { found: version });
    }
    if bytes[6..8] != [0, 0] {
        return Err(Error::Malformed);
    }
    let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    let crc = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
    let rest = &bytes[HEADER_LEN..];
    if rest.len() < len {
        return Err(Error::Truncated);
    }
    if rest.len() > len {
        return Err(Error::TrailingBytes);
    }
    if CRC.checksum(rest) != crc {
        return Err(Error::ChecksumMismatch);
    }
    let mut de = postcard::Deserializer::from_bytes(rest);
    let unused = serde::Deserializer::deserialize_struct(
        &mut de,
        "ModelDesc",
        &["name", "timesteps", "input", "layers"],
        DescInto(desc),
    )
    .and_then(|()| de.finalize())
    .map_err(|e| match e {
        postcard::Error::DeserializeUnexpectedEnd => Error::Truncated,
        _ => Error::Malformed,
    })?;
    if !unused.is_empty() {
        return Err(Error::TrailingBytes);
    }
    Ok(())
}

/// Visits the fields of a [`ModelDesc`] in their declared order (as the derived `Deserialize`
/// does), writing them into the borrowed description.
struct DescInto<'d, 'a>(&'d mut ModelDesc<'a>);

impl<'a> serde::de::Visitor<'a> for DescInto<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("struct ModelDesc")
    }

    fn visit_seq<A: serde::de::SeqAccess<'a>>(self, mut seq: A) -> Result<(), A::Error> {
        use serde::de::Error;
        let missing = |i| A::Error::invalid_length(i, &"struct ModelDesc with 4 elements");
        self.0.name = seq.next_element()?.ok_or_else(|| missing(0))?;
        self.0.timesteps = seq.next_element()?.ok_or_else(|| missing(1))?;
        self.0.input = seq.next_element()?.ok_or_else(|| missing(2))?;
        self.0.layers.clear();
        seq.next_element_seed(LayersInto(&mut self.0.layers))?
            .ok_or_else(|| missing(3))
    }
}

/// Decodes a sequence of layers into the borrowed list, one layer at a time (as heapless's
/// `Deserialize` for `Vec` does: a layer beyond the capacity is an invalid length).
struct LayersInto<'d, 'a>(&'d mut heapless::Vec<Layer<'a>, MAX_LAYERS>);

impl<'a> serde::de::DeserializeSeed<'a> for LayersInto<'_, 'a> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'a>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'a> serde::de::Visitor<'a> for LayersInto<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: serde::de::SeqAccess<'a>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(layer) = seq.next_element()? {
            if self.0.push(layer).is_err() {
                return Err(serde::de::Error::invalid_length(MAX_LAYERS + 1, &self));
            }
        }
        Ok(())
    }
}

impl ModelDesc<'_> {
    /// A description with no layers, to decode into.
    pub(crate) const fn empty() -> Self {
        ModelDesc {
            name: "",
            timesteps: 0,
            input: Input {
                shape: Shape {
                    height: 0,
                    width: 0,
                    channels: 0,
                },
                encoding: Encoding::Direct,
            },
            layers: heapless::Vec::new(),
        }
    }
}
