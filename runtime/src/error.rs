//! The one error type of the runtime: what can be wrong with a model file, an arena or an input.

use core::fmt;

/// Why a model could not be loaded or an inference could not run.
///
/// Every variant is a property of the bytes or buffers the caller handed in; the runtime never
/// panics on any input, it returns one of these instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The file does not start with the `EMBR` magic: not an Ember model.
    BadMagic,
    /// The file was written in a format version this runtime does not read.
    UnsupportedVersion {
        /// Version found in the header.
        found: u16,
    },
    /// The file ends before the header or the payload it announces.
    Truncated,
    /// The payload's CRC-32 differs from the header's: the file is corrupt.
    ChecksumMismatch,
    /// The header's reserved field is not zero, or the payload could not be decoded
    /// (unknown layer kind, bad field encoding, invalid UTF-8 name).
    Malformed,
    /// Bytes follow the payload or the encoded description inside it.
    TrailingBytes,
    /// The model has no layers, too many layers, or its last layer is not a readout.
    BadTopology,
    /// A layer's input does not match the previous layer's output.
    ShapeMismatch {
        /// Index of the offending layer.
        layer: u8,
    },
    /// A dimension is zero or a kernel, stride or padding is impossible for its input.
    BadDimension {
        /// Index of the offending layer.
        layer: u8,
    },
    /// A size computed from the file's dimensions overflows.
    SizeOverflow,
    /// A weight or index blob has the wrong length, or an index is out of range, or a
    /// row-balanced sparse (Ell) matrix has an unsupported index width (4 bits for more than
    /// 16 columns, 8 bits for more than 256, any other width) or more entries per row than
    /// columns.
    BadWeights {
        /// Index of the offending layer.
        layer: u8,
    },
    /// A neuron parameter is out of range or has the wrong length (threshold not positive,
    /// leak above one, value too wide for the membrane, per-channel array of the wrong size),
    /// or the direct-input layer's current could overflow 32 bits.
    BadParameter {
        /// Index of the offending layer.
        layer: u8,
    },
    /// The arena handed to the engine is smaller than the model needs.
    ArenaTooSmall {
        /// Bytes the model needs (see `Model::arena_bytes`).
        needed: u32,
        /// Bytes given.
        given: u32,
    },
    /// The input slice does not have the model's input size.
    InputSizeMismatch {
        /// Bytes the model's input takes.
        expected: u32,
        /// Bytes given.
        given: u32,
    },
    /// Zero timesteps were asked for.
    ZeroTimesteps,
    /// The output buffer for encoding a model is too small.
    BufferTooSmall,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::BadMagic => f.write_str("not an Ember model (bad magic)"),
            Error::UnsupportedVersion { found } => write!(
                f,
                "model format version {found} is not supported (this runtime reads version {})",
                crate::format::VERSION
            ),
            Error::Truncated => f.write_str("model file is truncated"),
            Error::ChecksumMismatch => {
                f.write_str("model payload checksum mismatch (corrupt file)")
            }
            Error::Malformed => f.write_str("model header or payload is malformed"),
            Error::TrailingBytes => f.write_str("unexpected bytes after the model payload"),
            Error::BadTopology => f.write_str(
                "model must have 1..=16 layers, with exactly one readout, as the last layer",
            ),
            Error::ShapeMismatch { layer } => {
                write!(
                    f,
                    "layer {layer}: input shape does not match the previous layer's output"
                )
            }
            Error::BadDimension { layer } => {
                write!(
                    f,
                    "layer {layer}: impossible dimension, kernel, stride or padding"
                )
            }
            Error::SizeOverflow => {
                f.write_str("a size computed from the model's dimensions overflows")
            }
            Error::BadWeights { layer } => {
                write!(
                    f,
                    "layer {layer}: weight or index data has a bad length, an out-of-range index or an unsupported index width"
                )
            }
            Error::BadParameter { layer } => {
                write!(
                    f,
                    "layer {layer}: neuron parameter out of range or of the wrong length"
                )
            }
            Error::ArenaTooSmall { needed, given } => {
                write!(
                    f,
                    "arena too small: the model needs {needed} bytes, {given} given"
                )
            }
            Error::InputSizeMismatch { expected, given } => {
                write!(f, "input has {given} bytes, the model takes {expected}")
            }
            Error::ZeroTimesteps => f.write_str("timesteps must be at least 1"),
            Error::BufferTooSmall => f.write_str("output buffer too small for the encoded model"),
        }
    }
}

impl core::error::Error for Error {}
