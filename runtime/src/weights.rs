//! Reading weight rows out of their packed little-endian blobs, dense or sparse.
//!
//! Every kernel in the engine is built on one operation: add row `r` of a weight matrix,
//! scaled by an event value, into a contiguous run of membranes. A dense row touches every
//! column; a sparse row only its kept entries, so work follows the non-zero weights.

use crate::format::{Precision, Storage, Weights};
use crate::lif::Membrane;

/// The signed value of 4-bit weight number `i` in a packed blob (low nibble first).
#[inline(always)]
pub(crate) fn nibble(values: &[u8], i: usize) -> i32 {
    let byte = values[i >> 1];
    let n = if i & 1 == 0 { byte << 4 } else { byte & 0xF0 };
    ((n as i8) >> 4) as i32
}

/// The value of weight number `i` of a blob at `precision`.
#[inline(always)]
pub(crate) fn weight_at(values: &[u8], precision: Precision, i: usize) -> i32 {
    match precision {
        Precision::I4 => nibble(values, i),
        Precision::I8 => values[i] as i8 as i32,
        Precision::I16 => i16::from_le_bytes([values[2 * i], values[2 * i + 1]]) as i32,
    }
}

/// Reads u32 LE number `i`.
#[inline(always)]
pub(crate) fn u32_at(bytes: &[u8], i: usize) -> usize {
    u32::from_le_bytes([
        bytes[4 * i],
        bytes[4 * i + 1],
        bytes[4 * i + 2],
        bytes[4 * i + 3],
    ]) as usize
}

/// Reads u16 LE number `i`.
#[inline(always)]
pub(crate) fn u16_at(bytes: &[u8], i: usize) -> usize {
    u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]) as usize
}

/// Rows of a weight matrix in one storage format and precision. Kernels are generic over
/// it, so the format is dispatched once per layer and timestep, not once per event.
pub(crate) trait Rows {
    /// Adds `v * W[row, c]` to `out[c]` for the row's stored entries and returns how many
    /// weights were added (the synaptic operations). `out` has the matrix's column count.
    /// The blob sizes were checked when the model was loaded, so the indexing cannot fail.
    /// `SAT`: saturate every addition; without it the caller has proved that none can
    /// overflow (see `Membrane::acc`).
    fn add<M: Membrane, const SAT: bool>(&self, row: usize, v: i32, out: &mut [M]) -> u32;

    /// Whether unsaturated steps with 32-bit membranes never come here: `fast` takes them
    /// (dense int8 weights). Kernels then compile only their saturating variant, which gives
    /// the same results, and the firmware stays smaller.
    const FAST_I32: bool = false;
}

/// What a kernel does with the rows, once they have a concrete type.
pub(crate) trait WithRows {
    /// Runs the kernel; returns its synaptic operations.
    fn run<R: Rows>(self, rows: R) -> u64;
}

/// Calls `kernel` with `w`'s rows as their concrete format (`cols` columns).
pub(crate) fn with_rows<K: WithRows>(w: &Weights<'_>, cols: usize, kernel: K) -> u64 {
    match (w.storage, w.precision) {
        (Storage::Dense { values }, Precision::I8) => kernel.run(DenseI8 { values, cols }),
        (Storage::Dense { values }, Precision::I4) => kernel.run(DenseI4 { values, cols }),
        (Storage::Dense { values }, Precision::I16) => kernel.run(DenseI16 { values, cols }),
        (
            Storage::Sparse {
                row_ptr,
                cols: idx,
                values,
            },
            Precision::I8,
        ) => kernel.run(SparseI8 {
            row_ptr,
            idx,
            values,
        }),
        (
            Storage::Sparse {
                row_ptr,
                cols: idx,
                values,
            },
            precision,
        ) => kernel.run(SparseAny {
            row_ptr,
            idx,
            values,
            precision,
        }),
    }
}

struct DenseI8<'a> {
    values: &'a [u8],
    cols: usize,
}

impl Rows for DenseI8<'_> {
    const FAST_I32: bool = true;

    #[inline(always)]
    fn add<M: Membrane, const SAT: bool>(&self, row: usize, v: i32, out: &mut [M]) -> u32 {
        let r = &self.values[row * self.cols..][..self.cols];
        if v == 1 {
            for (m, &b) in out.iter_mut().zip(r) {
                *m = m.acc::<SAT>(b as i8 as i32);
            }
        } else {
            for (m, &b) in out.iter_mut().zip(r) {
                *m = m.acc::<SAT>(v * (b as i8 as i32));
            }
        }
        self.cols as u32
    }
}

struct DenseI4<'a> {
    values: &'a [u8],
    cols: usize,
}

impl Rows for DenseI4<'_> {
    #[inline(always)]
    fn add<M: Membrane, const SAT: bool>(&self, row: usize, v: i32, out: &mut [M]) -> u32 {
        let mut start = row * self.cols;
        // A row that starts in the high nibble of a byte: that weight first.
        let out = match out.split_first_mut() {
            Some((m, rest)) if start & 1 == 1 => {
                *m = m.acc::<SAT>(v * nibble(self.values, start));
                start += 1;
                rest
            }
            _ => out,
        };
        // Then two weights per byte, low nibble first.
        let bytes = &self.values[start / 2..(start + out.len()).div_ceil(2)];
        let mut pairs = out.chunks_exact_mut(2);
        let (lo, hi) = (
            |b: u8| (((b << 4) as i8) >> 4) as i32,
            |b: u8| ((b as i8) >> 4) as i32,
        );
        if v == 1 {
            for (pair, &b) in (&mut pairs).zip(bytes) {
                pair[0] = pair[0].acc::<SAT>(lo(b));
                pair[1] = pair[1].acc::<SAT>(hi(b));
            }
        } else {
            for (pair, &b) in (&mut pairs).zip(bytes) {
                pair[0] = pair[0].acc::<SAT>(v * lo(b));
                pair[1] = pair[1].acc::<SAT>(v * hi(b));
            }
        }
        if let ([m], Some(&b)) = (pairs.into_remainder(), bytes.last()) {
            *m = m.acc::<SAT>(v * lo(b));
        }
        self.cols as u32
    }
}

struct DenseI16<'a> {
    values: &'a [u8],
    cols: usize,
}

impl Rows for DenseI16<'_> {
    #[inline(always)]
    fn add<M: Membrane, const SAT: bool>(&self, row: usize, v: i32, out: &mut [M]) -> u32 {
        let r = &self.values[2 * row * self.cols..][..2 * self.cols];
        for (m, b) in out.iter_mut().zip(r.chunks_exact(2)) {
            *m = m.acc::<SAT>(v * i16::from_le_bytes([b[0], b[1]]) as i32);
        }
        self.cols as u32
    }
}

struct SparseI8<'a> {
    row_ptr: &'a [u8],
    idx: &'a [u8],
    values: &'a [u8],
}

impl Rows for SparseI8<'_> {
    #[inline(always)]
    fn add<M: Membrane, const SAT: bool>(&self, row: usize, v: i32, out: &mut [M]) -> u32 {
        let (a, b) = (u32_at(self.row_ptr, row), u32_at(self.row_ptr, row + 1));
        for (c, &wb) in self.idx[2 * a..2 * b]
            .chunks_exact(2)
            .zip(&self.values[a..b])
        {
            let m = &mut out[u16::from_le_bytes([c[0], c[1]]) as usize];
            *m = m.acc::<SAT>(v * (wb as i8 as i32));
        }
        (b - a) as u32
    }
}

struct SparseAny<'a> {
    row_ptr: &'a [u8],
    idx: &'a [u8],
    values: &'a [u8],
    precision: Precision,
}

impl Rows for SparseAny<'_> {
    #[inline(always)]
    fn add<M: Membrane, const SAT: bool>(&self, row: usize, v: i32, out: &mut [M]) -> u32 {
        let (a, b) = (u32_at(self.row_ptr, row), u32_at(self.row_ptr, row + 1));
        for k in a..b {
            let m = &mut out[u16_at(self.idx, k)];
            *m = m.acc::<SAT>(v * weight_at(self.values, self.precision, k));
        }
        (b - a) as u32
    }
}

/// Number of weights stored for a `rows x cols` matrix, after checking every blob's length
/// and every index. Also returns the largest absolute weight.
pub(crate) fn check(w: &Weights<'_>, rows: usize, cols: usize) -> Option<(usize, i32)> {
    let p = w.precision;
    let count = match w.storage {
        Storage::Dense { values } => {
            let n = rows.checked_mul(cols)?;
            (values.len() == p.bytes_for(n)?).then_some(n)?
        }
        Storage::Sparse {
            row_ptr,
            cols: idx,
            values,
        } => {
            if row_ptr.len() != rows.checked_add(1)?.checked_mul(4)? || u32_at(row_ptr, 0) != 0 {
                return None;
            }
            let nnz = u32_at(row_ptr, rows);
            if idx.len() != nnz.checked_mul(2)? || values.len() != p.bytes_for(nnz)? {
                return None;
            }
            for r in 0..rows {
                if u32_at(row_ptr, r) > u32_at(row_ptr, r + 1) {
                    return None;
                }
            }
            if (0..nnz).any(|k| u16_at(idx, k) >= cols) {
                return None;
            }
            nnz
        }
    };
    let values = match w.storage {
        Storage::Dense { values } | Storage::Sparse { values, .. } => values,
    };
    let max_abs = (0..count)
        .map(|i| weight_at(values, p, i).abs())
        .max()
        .unwrap_or(0);
    Some((count, max_abs))
}
