//! Reading weight rows out of their packed little-endian blobs, dense or sparse.
//!
//! Every kernel in the engine is built on one operation: add row `r` of a weight matrix,
//! scaled by an event value, into a contiguous run of membranes. A dense row touches every
//! column; a sparse row (CSR or Ell) only its stored entries, so work follows the kept
//! weights.

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

/// Column index number `k` of an Ell index blob: 4-bit (`four`, low nibble first) or 8-bit.
#[inline(always)]
pub(crate) fn ell_index(idx: &[u8], four: bool, k: usize) -> usize {
    if four {
        ((idx[k >> 1] >> ((k & 1) << 2)) & 0xF) as usize
    } else {
        idx[k] as usize
    }
}

/// Rows of a weight matrix in one storage format and precision, for the saturating kernels
/// (every step of 16-bit membranes, the steps of 32-bit ones in which an addition could
/// overflow; `fast` takes the others). Kernels are generic over it, so the format is
/// dispatched once per layer and timestep, not once per event.
pub(crate) trait Rows {
    /// Adds `v * W[row, c]` to `out[c]`, saturating, for the row's stored entries and
    /// returns how many weights were added (the synaptic operations). `out` has the matrix's
    /// column count. The blob sizes were checked when the model was loaded, so the indexing
    /// cannot fail.
    fn add<M: Membrane>(&self, row: usize, v: i32, out: &mut [M]) -> u32;
}

/// What a kernel does with the rows, once they have a concrete type.
pub(crate) trait WithRows {
    /// Runs the kernel; returns its synaptic operations.
    fn run<R: Rows>(self, rows: R) -> u64;
}

/// Calls `kernel` with `w`'s rows as their concrete format (`cols` columns).
///
/// Every row format would get its own copy of every kernel (dense and convolution, each
/// membrane width: a few KB of Cortex-M0 code per format). To keep the firmware small only
/// the formats that trained networks use most, int8 weights stored dense or row-balanced
/// sparse (Ell), get theirs, with the row addition inlined; the others (int4 and int16
/// weights, CSR) share one copy through [`Shared`], whose row addition is a call that
/// branches on the format and then runs that format's own loop.
pub(crate) fn with_rows<K: WithRows>(w: &Weights<'_>, cols: usize, kernel: K) -> u64 {
    match (w.storage, w.precision) {
        (Storage::Dense { values }, Precision::I8) => kernel.run(DenseI8 { values, cols }),
        (Storage::Dense { values }, Precision::I4) => {
            kernel.run(Shared::DenseI4(DenseI4 { values, cols }))
        }
        (Storage::Dense { values }, Precision::I16) => {
            kernel.run(Shared::DenseI16(DenseI16 { values, cols }))
        }
        (
            Storage::Sparse {
                row_ptr,
                cols: idx,
                values,
            },
            Precision::I8,
        ) => kernel.run(Shared::SparseI8(SparseI8 {
            row_ptr,
            idx,
            values,
        })),
        (
            Storage::Sparse {
                row_ptr,
                cols: idx,
                values,
            },
            precision,
        ) => kernel.run(Shared::SparseAny(SparseAny {
            row_ptr,
            idx,
            values,
            precision,
        })),
        (
            Storage::Ell {
                per_row,
                index_bits,
                cols: idx,
                values,
            },
            precision,
        ) => {
            let e = Ell {
                per_row: per_row as usize,
                four: index_bits == 4,
                idx,
                values,
            };
            match precision {
                Precision::I8 => kernel.run(EllI8(e)),
                Precision::I4 => kernel.run(Shared::EllI4(EllI4(e))),
                Precision::I16 => kernel.run(Shared::EllI16(EllI16(e))),
            }
        }
    }
}

/// The row formats that share one copy of the kernels (see [`with_rows`]).
enum Shared<'a> {
    DenseI4(DenseI4<'a>),
    DenseI16(DenseI16<'a>),
    SparseI8(SparseI8<'a>),
    SparseAny(SparseAny<'a>),
    EllI4(EllI4<'a>),
    EllI16(EllI16<'a>),
}

impl Rows for Shared<'_> {
    #[inline(always)]
    fn add<M: Membrane>(&self, row: usize, v: i32, out: &mut [M]) -> u32 {
        self.add_row::<M>(row, v, out)
    }
}

impl Shared<'_> {
    /// [`Rows::add`] of the format, not inlined: one copy per membrane width.
    #[inline(never)]
    fn add_row<M: Membrane>(&self, row: usize, v: i32, out: &mut [M]) -> u32 {
        match self {
            Shared::DenseI4(r) => r.add::<M>(row, v, out),
            Shared::DenseI16(r) => r.add::<M>(row, v, out),
            Shared::SparseI8(r) => r.add::<M>(row, v, out),
            Shared::SparseAny(r) => r.add::<M>(row, v, out),
            Shared::EllI4(r) => r.add::<M>(row, v, out),
            Shared::EllI16(r) => r.add::<M>(row, v, out),
        }
    }
}

struct DenseI8<'a> {
    values: &'a [u8],
    cols: usize,
}

impl Rows for DenseI8<'_> {
    #[inline(always)]
    fn add<M: Membrane>(&self, row: usize, v: i32, out: &mut [M]) -> u32 {
        let r = &self.values[row * self.cols..][..self.cols];
        if v == 1 {
            for (m, &b) in out.iter_mut().zip(r) {
                *m = m.add(b as i8 as i32);
            }
        } else {
            for (m, &b) in out.iter_mut().zip(r) {
                *m = m.add(v * (b as i8 as i32));
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
    fn add<M: Membrane>(&self, row: usize, v: i32, out: &mut [M]) -> u32 {
        let mut start = row * self.cols;
        // A row that starts in the high nibble of a byte: that weight first.
        let out = match out.split_first_mut() {
            Some((m, rest)) if start & 1 == 1 => {
                *m = m.add(v * nibble(self.values, start));
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
                pair[0] = pair[0].add(lo(b));
                pair[1] = pair[1].add(hi(b));
            }
        } else {
            for (pair, &b) in (&mut pairs).zip(bytes) {
                pair[0] = pair[0].add(v * lo(b));
                pair[1] = pair[1].add(v * hi(b));
            }
        }
        if let ([m], Some(&b)) = (pairs.into_remainder(), bytes.last()) {
            *m = m.add(v * lo(b));
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
    fn add<M: Membrane>(&self, row: usize, v: i32, out: &mut [M]) -> u32 {
        let r = &self.values[2 * row * self.cols..][..2 * self.cols];
        for (m, b) in out.iter_mut().zip(r.chunks_exact(2)) {
            *m = m.add(v * i16::from_le_bytes([b[0], b[1]]) as i32);
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
    fn add<M: Membrane>(&self, row: usize, v: i32, out: &mut [M]) -> u32 {
        let (a, b) = (u32_at(self.row_ptr, row), u32_at(self.row_ptr, row + 1));
        for (c, &wb) in self.idx[2 * a..2 * b]
            .chunks_exact(2)
            .zip(&self.values[a..b])
        {
            let m = &mut out[u16::from_le_bytes([c[0], c[1]]) as usize];
            *m = m.add(v * (wb as i8 as i32));
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
    fn add<M: Membrane>(&self, row: usize, v: i32, out: &mut [M]) -> u32 {
        let (a, b) = (u32_at(self.row_ptr, row), u32_at(self.row_ptr, row + 1));
        for k in a..b {
            let m = &mut out[u16_at(self.idx, k)];
            *m = m.add(v * weight_at(self.values, self.precision, k));
        }
        (b - a) as u32
    }
}

/// A row-balanced sparse matrix (`Storage::Ell`): row `r`'s entries are entries
/// `r * per_row .. (r + 1) * per_row` of both blobs. Each row addition branches once on the
/// index width, then runs a loop for that width, two entries per index byte when 4-bit.
#[derive(Clone, Copy)]
pub(crate) struct Ell<'a> {
    per_row: usize,
    /// 4-bit column indices (else 8-bit).
    four: bool,
    idx: &'a [u8],
    values: &'a [u8],
}

/// `out[c] += v * w`, saturating (`c` was checked below the column count at load).
#[inline(always)]
fn put<M: Membrane>(out: &mut [M], c: usize, v: i32, w: i32) {
    if let Some(m) = out.get_mut(c) {
        *m = m.add(v * w);
    }
}

/// Ell with int8 weights.
struct EllI8<'a>(Ell<'a>);

impl Rows for EllI8<'_> {
    #[inline(always)]
    fn add<M: Membrane>(&self, row: usize, v: i32, out: &mut [M]) -> u32 {
        let Ell {
            per_row,
            four,
            idx,
            values,
        } = self.0;
        let a = row * per_row;
        let w = &values[a..a + per_row];
        let w8 = |b: u8| b as i8 as i32;
        if !four {
            for (&c, &b) in idx[a..a + per_row].iter().zip(w) {
                put::<M>(out, c as usize, v, w8(b));
            }
            return per_row as u32;
        }
        // 4-bit indices: an entry in the high nibble first, then whole index bytes.
        let (mut k, mut w) = (a, w);
        if let (1, Some((&b, rest))) = (k & 1, w.split_first()) {
            put::<M>(out, ell_index(idx, true, k), v, w8(b));
            (k, w) = (k + 1, rest);
        }
        let mut pairs = w.chunks_exact(2);
        for (p, &c) in (&mut pairs).zip(&idx[k / 2..]) {
            put::<M>(out, (c & 0xF) as usize, v, w8(p[0]));
            put::<M>(out, (c >> 4) as usize, v, w8(p[1]));
        }
        if let [b] = pairs.remainder() {
            put::<M>(out, ell_index(idx, true, a + per_row - 1), v, w8(*b));
        }
        per_row as u32
    }
}

/// Ell with int4 weights (two per byte, low nibble first).
struct EllI4<'a>(Ell<'a>);

impl Rows for EllI4<'_> {
    #[inline(always)]
    fn add<M: Membrane>(&self, row: usize, v: i32, out: &mut [M]) -> u32 {
        let Ell {
            per_row,
            four,
            idx,
            values,
        } = self.0;
        let (a, end) = (row * per_row, (row + 1) * per_row);
        let (lo, hi) = (
            |b: u8| (((b << 4) as i8) >> 4) as i32,
            |b: u8| ((b as i8) >> 4) as i32,
        );
        // An entry in the high nibble of a weight byte first, then whole weight bytes.
        let mut k = a;
        if k & 1 == 1 && k < end {
            put::<M>(out, ell_index(idx, four, k), v, nibble(values, k));
            k += 1;
        }
        let bytes = &values[k / 2..end / 2];
        if four {
            // Index and weight nibbles line up: one index byte per weight byte.
            for (&c, &b) in idx[k / 2..end / 2].iter().zip(bytes) {
                put::<M>(out, (c & 0xF) as usize, v, lo(b));
                put::<M>(out, (c >> 4) as usize, v, hi(b));
            }
        } else {
            for (c, &b) in idx[k..end].chunks_exact(2).zip(bytes) {
                put::<M>(out, c[0] as usize, v, lo(b));
                put::<M>(out, c[1] as usize, v, hi(b));
            }
        }
        if end & 1 == 1 && end > k {
            put::<M>(
                out,
                ell_index(idx, four, end - 1),
                v,
                nibble(values, end - 1),
            );
        }
        per_row as u32
    }
}

/// Ell with int16 weights: one generic loop.
struct EllI16<'a>(Ell<'a>);

impl Rows for EllI16<'_> {
    #[inline(always)]
    fn add<M: Membrane>(&self, row: usize, v: i32, out: &mut [M]) -> u32 {
        let Ell {
            per_row,
            four,
            idx,
            values,
        } = self.0;
        for k in row * per_row..(row + 1) * per_row {
            let w = weight_at(values, Precision::I16, k);
            put::<M>(out, ell_index(idx, four, k), v, w);
        }
        per_row as u32
    }
}

/// Whether the specialised Ell loops ([`ell_rows`]) and other code that only saves
/// instructions are left out (the `compact` feature).
pub(crate) const COMPACT: bool = cfg!(feature = "compact");

/// The rows of every format but dense int8 (which has kernels of its own there), as `fast`
/// adds them in the steps where no addition can saturate, into 32-bit membranes. One copy of
/// the loops for all of them, in a function that is not inlined (so that `fast`'s loops
/// around it do not spill): int8 Ell, the common pruned format, and int4 dense rows of an
/// even length have loops of their own; the others read each entry's weight through
/// [`weight_at`].
pub(crate) enum Unsaturated<'a> {
    Dense {
        values: &'a [u8],
        cols: usize,
        precision: Precision,
    },
    Ell(Ell<'a>, Precision),
    Csr {
        row_ptr: &'a [u8],
        idx: &'a [u8],
        values: &'a [u8],
        precision: Precision,
    },
}

impl<'a> Unsaturated<'a> {
    /// The rows of `w` (`cols` columns).
    pub(crate) fn of(w: &Weights<'a>, cols: usize) -> Self {
        let precision = w.precision;
        match w.storage {
            Storage::Dense { values } => Unsaturated::Dense {
                values,
                cols,
                precision,
            },
            Storage::Ell {
                per_row,
                index_bits,
                cols,
                values,
            } => {
                let e = Ell {
                    per_row: per_row as usize,
                    four: index_bits == 4,
                    idx: cols,
                    values,
                };
                Unsaturated::Ell(e, precision)
            }
            Storage::Sparse {
                row_ptr,
                cols,
                values,
            } => Unsaturated::Csr {
                row_ptr,
                idx: cols,
                values,
                precision,
            },
        }
    }

    /// Calls `kernel` with these rows: int8 and int4 Ell rows as an [`EllRows`] (the kernel
    /// calls their loop directly; not under `compact`), the others as they are (one call per
    /// list, dispatched on the format).
    pub(crate) fn with_list<K: ListKernel>(&self, kernel: K) -> u64 {
        match *self {
            Unsaturated::Ell(e, p @ (Precision::I8 | Precision::I4)) if !COMPACT => {
                match (p == Precision::I4, e.four) {
                    (false, false) => kernel.run(&EllRows::<false, false>(e)),
                    (false, true) => kernel.run(&EllRows::<false, true>(e)),
                    (true, false) => kernel.run(&EllRows::<true, false>(e)),
                    (true, true) => kernel.run(&EllRows::<true, true>(e)),
                }
            }
            _ => kernel.run(self),
        }
    }

    /// Adds row `first + i`, scaled by `v`, for every non-zero event `(i, v)` of `list`
    /// (`fast::NonZero`), without saturation into 32-bit membranes: a dense layer's inputs
    /// (`first` the chunk's first input) or one input pixel's channels through one kernel
    /// offset. int8 and int4 Ell rows go to [`ell_rows`] (not under `compact`), int4 dense
    /// rows of an even length have a loop of their own, the others read each entry through
    /// [`weight_at`]. Returns the synaptic operations.
    #[inline(never)]
    pub(crate) fn add_list(&self, first: usize, list: &[(u8, u8)], out: &mut [i32]) -> u64 {
        let add = |m: Option<&mut i32>, v: i32, w: i32| {
            if let Some(m) = m {
                *m += v * w;
            }
        };
        let mut ops = 0u64;
        let rows = list.iter().map(|&(i, v)| (first + i as usize, v as i32));
        match *self {
            Unsaturated::Ell(e, p @ (Precision::I8 | Precision::I4)) if !COMPACT => {
                return match (p, e.four) {
                    (Precision::I8, false) => ell_rows::<false, false>(e, first, list, out),
                    (Precision::I8, true) => ell_rows::<false, true>(e, first, list, out),
                    (_, false) => ell_rows::<true, false>(e, first, list, out),
                    (_, true) => ell_rows::<true, true>(e, first, list, out),
                };
            }
            Unsaturated::Dense {
                values,
                cols,
                precision: Precision::I4,
            } if cols % 2 == 0 => {
                // Every row starts on a whole byte: two weights per byte, low nibble first.
                let half = cols / 2;
                for (r, v) in rows {
                    let Some(row) = values.get(r * half..r * half + half) else {
                        continue;
                    };
                    for (m, &b) in out.chunks_exact_mut(2).zip(row) {
                        m[0] += v * ((((b << 4) as i8) >> 4) as i32);
                        m[1] += v * (((b as i8) >> 4) as i32);
                    }
                    ops += cols as u64;
                }
            }
            Unsaturated::Dense {
                values,
                cols,
                precision,
            } => {
                for (r, v) in rows {
                    for (m, k) in out.iter_mut().zip(r * cols..(r + 1) * cols) {
                        *m += v * weight_at(values, precision, k);
                    }
                    ops += cols as u64;
                }
            }
            Unsaturated::Ell(e, p) => {
                for (r, v) in rows {
                    for k in r * e.per_row..(r + 1) * e.per_row {
                        let c = ell_index(e.idx, e.four, k);
                        add(out.get_mut(c), v, weight_at(e.values, p, k));
                    }
                    ops += e.per_row as u64;
                }
            }
            Unsaturated::Csr {
                row_ptr,
                idx,
                values,
                precision,
            } => {
                for (r, v) in rows {
                    let (a, b) = (u32_at(row_ptr, r), u32_at(row_ptr, r + 1));
                    for k in a..b {
                        let w = weight_at(values, precision, k);
                        add(out.get_mut(u16_at(idx, k)), v, w);
                    }
                    ops += (b - a) as u64;
                }
            }
        }
        ops
    }
}

/// Adds the rows of a list of non-zero events (see [`Unsaturated::add_list`]).
pub(crate) trait AddList {
    /// Adds row `first + i`, scaled by `v`, for every `(i, v)` of `list`, without
    /// saturation; returns the synaptic operations.
    fn add_list(&self, first: usize, list: &[(u8, u8)], out: &mut [i32]) -> u64;
}

/// What a kernel does with an [`AddList`] of a concrete type.
pub(crate) trait ListKernel {
    /// Runs the kernel; returns its synaptic operations.
    fn run<R: AddList>(self, rows: &R) -> u64;
}

/// Ell rows read two entries at a time: [`ell_rows`] called directly by the kernel that uses
/// them, without [`Unsaturated::add_list`]'s dispatch on the format. (Inlining the loop
/// itself into a convolution's kernel made the registers spill.)
pub(crate) struct EllRows<'a, const I4: bool, const FOUR: bool>(Ell<'a>);

impl<const I4: bool, const FOUR: bool> AddList for EllRows<'_, I4, FOUR> {
    #[inline(always)]
    fn add_list(&self, first: usize, list: &[(u8, u8)], out: &mut [i32]) -> u64 {
        ell_rows::<I4, FOUR>(self.0, first, list, out)
    }
}

impl AddList for Unsaturated<'_> {
    #[inline(always)]
    fn add_list(&self, first: usize, list: &[(u8, u8)], out: &mut [i32]) -> u64 {
        Unsaturated::add_list(self, first, list, out)
    }
}

/// [`Unsaturated::add_list`] for Ell rows: int8 weights (`I4` false) or int4 weights (two per
/// byte, low nibble first), with 8-bit column indices or 4-bit ones (`FOUR`, two per byte),
/// read two entries at a time (entry by entry when packed rows have an odd length and so
/// start mid-byte every other row). A function of its own so that its loop keeps the
/// membranes' address in a register.
#[inline(never)]
fn ell_rows<const I4: bool, const FOUR: bool>(
    e: Ell<'_>,
    first: usize,
    list: &[(u8, u8)],
    out: &mut [i32],
) -> u64 {
    let n = e.per_row;
    let ops = (list.len() * n) as u64;
    if (I4 || FOUR) && n % 2 == 1 {
        // Packed rows of an odd length start in the middle of a byte every other row: entry
        // by entry (the formats are still known at compile time).
        for &(i, v) in list {
            let (r, v) = (first + i as usize, v as i32);
            for k in r * n..(r + 1) * n {
                let w = match I4 {
                    true => nibble(e.values, k),
                    false => e.values.get(k).map_or(0, |&b| b as i8 as i32),
                };
                if let Some(m) = out.get_mut(ell_index(e.idx, FOUR, k)) {
                    *m += v * w;
                }
            }
        }
        return ops;
    }
    // Bytes per row of the weights and of the indices.
    let (wn, xn) = (if I4 { n / 2 } else { n }, if FOUR { n / 2 } else { n });
    // The blobs from row `first` on.
    let values = e.values.get(first * wn..).unwrap_or_default();
    let idx = e.idx.get(first * xn..).unwrap_or_default();
    for &(i, v) in list {
        let (i, v) = (i as usize, v as i32);
        let (w, ix) = (
            values.get(i * wn..i * wn + wn),
            idx.get(i * xn..i * xn + xn),
        );
        let (Some(w), Some(ix)) = (w, ix) else {
            continue;
        };
        match (I4, FOUR) {
            (false, false) => add_pairs(out, v, pairs8(w, |b| b as i8 as i32), pairs8(ix, |c| c)),
            (false, true) => add_pairs(out, v, pairs8(w, |b| b as i8 as i32), pairs4(ix, nibbles)),
            (true, false) => add_pairs(out, v, pairs4(w, signed_nibbles), pairs8(ix, |c| c)),
            (true, true) => add_pairs(out, v, pairs4(w, signed_nibbles), pairs4(ix, nibbles)),
        }
        // An odd row of int8 weights and 8-bit indices: its last entry.
        if let (false, false, Some(&b), Some(&c)) = (I4, FOUR, w.last(), ix.last()) {
            if n % 2 == 1 {
                add_pairs(
                    out,
                    v,
                    [(b as i8 as i32, 0)].into_iter(),
                    [(c, c)].into_iter(),
                );
            }
        }
    }
    ops
}

/// `out[c0] += v * w0; out[c1] += v * w1` for each pair of entries.
#[inline(always)]
fn add_pairs(
    out: &mut [i32],
    v: i32,
    w: impl Iterator<Item = (i32, i32)>,
    c: impl Iterator<Item = (u8, u8)>,
) {
    for ((w0, w1), (c0, c1)) in w.zip(c) {
        if let Some(m) = out.get_mut(c0 as usize) {
            *m += v * w0;
        }
        if let Some(m) = out.get_mut(c1 as usize) {
            *m += v * w1;
        }
    }
}

/// Pairs of consecutive bytes, each mapped by `f`.
#[inline(always)]
fn pairs8<'a, T>(bytes: &'a [u8], f: impl Fn(u8) -> T + 'a) -> impl Iterator<Item = (T, T)> + 'a {
    bytes.chunks_exact(2).map(move |c| (f(c[0]), f(c[1])))
}

/// Each byte as its two nibbles, low first, mapped by `f`.
#[inline(always)]
fn pairs4<'a, T>(
    bytes: &'a [u8],
    f: impl Fn(u8) -> (T, T) + 'a,
) -> impl Iterator<Item = (T, T)> + 'a {
    bytes.iter().map(move |&b| f(b))
}

/// A byte's two nibbles, low first.
#[inline(always)]
fn nibbles(b: u8) -> (u8, u8) {
    (b & 0xF, b >> 4)
}

/// A byte's two nibbles as signed 4-bit numbers, low first.
#[inline(always)]
fn signed_nibbles(b: u8) -> (i32, i32) {
    ((((b << 4) as i8) >> 4) as i32, ((b as i8) >> 4) as i32)
}

/// Checks every blob's length and every index of a `rows x cols` matrix, and returns the
/// most the rows can add to one column for events of value 1: the sum over rows of the
/// largest magnitude one row adds to one column. That is the row's largest |weight| when no
/// column repeats among its non-zero entries, else, conservatively, the sum of its |weights|
/// (a sparse row that names a column twice adds twice to it). Repeats are found exactly up
/// to 256 columns; wider CSR rows count as repeating unless their columns increase. Each
/// event adds a row into a neuron's membranes at most once (one input per row for a dense
/// layer, one input pixel per kernel tap for a convolution), so this times the largest
/// event value bounds the current one neuron receives in one step.
pub(crate) fn check(w: &Weights<'_>, rows: usize, cols: usize) -> Option<u64> {
    let p = w.precision;
    let values = match w.storage {
        Storage::Dense { values } => {
            (values.len() == p.bytes_for(rows.checked_mul(cols)?)?).then_some(values)?
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
            if (0..rows).any(|r| u32_at(row_ptr, r) > u32_at(row_ptr, r + 1)) {
                return None;
            }
            values
        }
        Storage::Ell {
            per_row,
            index_bits,
            cols: idx,
            values,
        } => {
            let n = rows.checked_mul(per_row as usize)?;
            let fits = match index_bits {
                4 => cols <= 16,
                8 => cols <= 256,
                _ => false,
            };
            if !fits
                || per_row as usize > cols
                || idx.len() != n.checked_mul(index_bits as usize)?.div_ceil(8)
                || values.len() != p.bytes_for(n)?
            {
                return None;
            }
            values
        }
    };
    let mut total = 0u64;
    for r in 0..rows {
        let (a, b) = match w.storage {
            Storage::Dense { .. } => (r * cols, (r + 1) * cols),
            Storage::Sparse { row_ptr, .. } => (u32_at(row_ptr, r), u32_at(row_ptr, r + 1)),
            Storage::Ell { per_row, .. } => (r * per_row as usize, (r + 1) * per_row as usize),
        };
        // Whether a column repeats among the row's non-zero entries: exactly, with a bitmap of
        // the columns seen, for matrices of at most 256 columns (every Ell matrix); else
        // (CSR only) assumed unless the columns strictly increase.
        let (mut max, mut sum, mut next, mut repeated) = (0u64, 0u64, 0usize, false);
        let mut seen = [0u32; 8];
        for k in a..b {
            let c = match w.storage {
                Storage::Dense { .. } => k - a,
                Storage::Sparse { cols: idx, .. } => u16_at(idx, k),
                Storage::Ell {
                    index_bits,
                    cols: idx,
                    ..
                } => ell_index(idx, index_bits == 4, k),
            };
            if c >= cols {
                return None;
            }
            let m = weight_at(values, p, k).unsigned_abs() as u64;
            if m != 0 {
                repeated |= match seen.get_mut(c >> 5) {
                    Some(word) if cols <= 256 => {
                        let (old, bit) = (*word, 1u32 << (c & 31));
                        *word |= bit;
                        old & bit != 0
                    }
                    _ => c < next,
                };
                next = c + 1;
            }
            (max, sum) = (max.max(m), sum + m);
        }
        total += if repeated { sum } else { max };
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fast::tests::Rand;

    /// The Ell loops (`ell_rows`, or the generic one under `compact`)
    /// against a plain loop over `ell_index` and `weight_at`, every combination of weight
    /// precision and index width.
    #[test]
    fn ell_loops_equal_a_plain_loop() {
        let mut r = Rand(5);
        for case in 0..4000 {
            let (four, precision) = [
                (false, Precision::I8),
                (true, Precision::I8),
                (false, Precision::I4),
                (true, Precision::I4),
            ][case % 4];
            let cols = 1 + r.below(if four { 16 } else { 40 }) as usize;
            let (rows, per_row) = (1 + r.below(40) as usize, r.below(9) as usize);
            let n = rows * per_row;
            let idx_len = if four { n.div_ceil(2) } else { n };
            let idx: Vec<u8> = (0..idx_len)
                .map(|_| {
                    let (a, b) = (r.below(cols as u32) as u8, r.below(cols as u32) as u8);
                    if four {
                        a | b << 4
                    } else {
                        a
                    }
                })
                .collect();
            let values: Vec<u8> = (0..precision.bytes_for(n).unwrap())
                .map(|_| r.below(256) as u8)
                .collect();
            let first = r.below(rows as u32) as usize;
            let list: Vec<(u8, u8)> = (0..r.below(12))
                .map(|_| (r.below((rows - first) as u32) as u8, 1 + r.below(255) as u8))
                .collect();
            let e = Ell {
                per_row,
                four,
                idx: &idx,
                values: &values,
            };
            let mut want: Vec<i32> = (0..cols).map(|_| r.below(2001) as i32 - 1000).collect();
            let mut got = want.clone();
            let ops = Unsaturated::Ell(e, precision).add_list(first, &list, &mut got);
            for &(i, v) in &list {
                let row = first + i as usize;
                for k in row * per_row..(row + 1) * per_row {
                    want[ell_index(&idx, four, k)] += v as i32 * weight_at(&values, precision, k);
                }
            }
            assert_eq!(
                (ops, got),
                ((list.len() * per_row) as u64, want),
                "case {case}: {precision:?} four {four} rows {rows} per row {per_row} cols {cols}"
            );
        }
    }
}
