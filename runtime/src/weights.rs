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
    u32::from_le_bytes([bytes[4 * i], bytes[4 * i + 1], bytes[4 * i + 2], bytes[4 * i + 3]]) as usize
}

/// Reads u16 LE number `i`.
#[inline(always)]
pub(crate) fn u16_at(bytes: &[u8], i: usize) -> usize {
    u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]) as usize
}

/// Adds `v * W[row, c]` to `out[c]` for the row's entries and returns how many weights were
/// added (the synaptic operations). `out` has the matrix's column count.
///
/// The blob sizes were checked when the model was loaded, so the indexing cannot fail.
#[inline]
pub(crate) fn add_row<M: Membrane>(w: &Weights<'_>, row: usize, v: i32, out: &mut [M]) -> u32 {
    let cols = out.len();
    match (w.storage, w.precision) {
        (Storage::Dense { values }, Precision::I8) => {
            let r = &values[row * cols..row * cols + cols];
            if v == 1 {
                for (m, &b) in out.iter_mut().zip(r) {
                    *m = m.add(b as i8 as i32);
                }
            } else {
                for (m, &b) in out.iter_mut().zip(r) {
                    *m = m.add(v * (b as i8 as i32));
                }
            }
            cols as u32
        }
        (Storage::Dense { values }, Precision::I4) => {
            let start = row * cols;
            for (c, m) in out.iter_mut().enumerate() {
                *m = m.add(v * nibble(values, start + c));
            }
            cols as u32
        }
        (Storage::Dense { values }, Precision::I16) => {
            let r = &values[2 * row * cols..2 * (row * cols + cols)];
            for (m, b) in out.iter_mut().zip(r.chunks_exact(2)) {
                *m = m.add(v * i16::from_le_bytes([b[0], b[1]]) as i32);
            }
            cols as u32
        }
        (Storage::Sparse { row_ptr, cols: idx, values }, precision) => {
            let (a, b) = (u32_at(row_ptr, row), u32_at(row_ptr, row + 1));
            match precision {
                Precision::I8 => {
                    let ix = &idx[2 * a..2 * b];
                    for (c, &wb) in ix.chunks_exact(2).zip(&values[a..b]) {
                        let m = &mut out[u16::from_le_bytes([c[0], c[1]]) as usize];
                        *m = m.add(v * (wb as i8 as i32));
                    }
                }
                _ => {
                    for k in a..b {
                        let m = &mut out[u16_at(idx, k)];
                        *m = m.add(v * weight_at(values, precision, k));
                    }
                }
            }
            (b - a) as u32
        }
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
        Storage::Sparse { row_ptr, cols: idx, values } => {
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
    let max_abs = (0..count).map(|i| weight_at(values, p, i).abs()).max().unwrap_or(0);
    Some((count, max_abs))
}
