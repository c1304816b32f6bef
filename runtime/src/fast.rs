//! Kernels for the common case: 32-bit membranes and a timestep in which no addition can
//! saturate (the engine checks `max|membrane| + bound` first, see `model::Plan::bound`), and
//! for the direct-input current (which the loader proved cannot overflow 32 bits). Without
//! saturation the order of the additions does not change the result, so these kernels
//! regroup them; they give the bits of the scalar definition in `lif`, with fewer
//! instructions. The saturating steps go through `weights::Rows`.
//!
//! [`events`] picks the kernel for one layer and timestep. On Cortex-M (the instructions per
//! synaptic operation of `BENCHMARKS.md`):
//! - convolutions and wide dense layers add the events' weight rows two events at a time
//!   ([`add_rows2`]: each membrane loaded and stored once for two weights, four membranes per
//!   block, written out because the firmware is optimised for size and loops there are not
//!   unrolled);
//! - narrow dense layers (10 to [`NARROW_MAX`] outputs: readouts) go through
//!   [`dense_windows`]: it scans the events once per window of 10 outputs and keeps the
//!   window's ten sums in five registers for the whole timestep, then adds them to the
//!   membranes once. Per event that is two word loads and a halfword load for ten weights;
//! - every other format (int4 and int16 weights, CSR, Ell) finds an input pixel's non-zero
//!   events once ([`NonZero`]; a dense layer's, 32 inputs at a time) and adds their rows, per
//!   kernel offset, in one call: int8 and int4 Ell rows through loops of their own
//!   (`weights::ell_rows`, called directly from a copy of [`rows_conv`] per Ell variant), the
//!   others through `weights::Unsaturated::add_list`; the same on every target. Under the
//!   `compact` feature every format takes the second way.
//!
//! Other targets (the host) add each event's row in plain loops, which their compilers
//! vectorise better ([`add_row_plain`]). Both give the same results: the unit tests at the end
//! compare the two on every target.
//!
//! How five registers hold ten sums. Four weights of a row are read as one little-endian word
//! `x` with every byte offset by 128 (`x ^ 0x8080_8080`: byte `w + 128`, in 0..=255). Then
//! `x & 0x00FF_00FF` holds columns 0 and 2 in two 16-bit lanes and `(x >> 8) & 0x00FF_00FF`
//! columns 1 and 3 (Cortex-M4 does each in one `uxtb16`); columns 8 and 9, read as a
//! halfword `y`, go to the lanes of `(y | y << 8) & 0x00FF_00FF`. Adding `e * lanes` for
//! events whose values sum to `S <= 256` keeps every lane at most `255 * 256 < 65536`, so no
//! carry crosses lanes; a column's sum is its lane minus `128 * S`. Rows are taken in chunks
//! of `256 / largest event value` so that `S <= 256` always holds.

use crate::format::{ConvGeometry, Precision, Storage, Weights};
use crate::model::{Dims, Plan};
use crate::weights::{AddList, ListKernel, Unsaturated, COMPACT};

/// Whether to use the kernels shaped for Cortex-M (see the module documentation).
const CORTEX_M: bool = cfg!(target_arch = "arm");

/// Columns per window of [`dense_windows`].
const WINDOW: usize = 10;

/// Widest dense layer [`dense_windows`] takes: two windows. Wider layers would scan their
/// events too often and go through [`dense_rows`] instead.
const NARROW_MAX: usize = 2 * WINDOW;

/// Largest event value [`dense_windows`] takes: chunks of at least 16 rows (direct input, up
/// to 255, goes through [`dense_rows`]).
const NARROW_MAX_ACT: u32 = 16;

/// Adds one timestep's events of a synaptic layer to its membranes; returns the synaptic
/// operations.
/// The caller has checked that no addition can saturate. `mem` holds the output rows
/// `window` (first, count) of a convolution (the whole map: `(0, output height)`); a dense
/// layer's output is one row.
pub(crate) fn events(
    weights: &Weights<'_>,
    conv: Option<ConvGeometry>,
    plan: &Plan,
    window: (usize, usize),
    events: &[u8],
    mem: &mut [i32],
) -> u64 {
    let Weights {
        precision: Precision::I8,
        storage: Storage::Dense { values },
    } = *weights
    else {
        let rows = Unsaturated::of(weights, plan.output.c);
        return match conv {
            Some(g) => rows.with_list(RowsConv {
                geometry: g,
                inp: plan.input,
                out: plan.output,
                window,
                events,
                mem,
            }),
            None => {
                let (mut nz, mut ops) = (NonZero::new(), 0);
                for (part, first) in events.chunks(LIST).zip((0..).step_by(LIST)) {
                    ops += rows.add_list(first, nz.fill(part), mem);
                }
                ops
            }
        };
    };
    let cols = plan.output.c;
    match conv {
        Some(g) => self::conv::<CORTEX_M>(values, g, plan.input, plan.output, window, events, mem),
        None if CORTEX_M
            && (WINDOW..=NARROW_MAX).contains(&cols)
            && plan.max_act <= NARROW_MAX_ACT =>
        {
            dense_windows(values, cols, plan.max_act, events, mem)
        }
        None => dense_rows::<CORTEX_M>(values, cols, events, mem),
    }
}

/// Dense layer: every non-zero event adds its weight row.
#[inline(never)]
fn dense_rows<const TUNED: bool>(
    values: &[u8],
    cols: usize,
    events: &[u8],
    mem: &mut [i32],
) -> u64 {
    if cols == 0 {
        return 0;
    }
    let rows = values.chunks_exact(cols).zip(events);
    if !TUNED {
        let mut ops = 0;
        for (row, &v) in rows {
            if v != 0 {
                add_row_plain(mem, row, v as i32);
                ops += cols as u64;
            }
        }
        return ops;
    }
    let active = rows.clone().filter(|&(_, &v)| v != 0).count();
    add_events::<TUNED>(mem, rows.map(|(row, &v)| (v, row)));
    (active * cols) as u64
}

/// The input rows of a convolution (kernel, stride, padding) over `h` input rows that reach
/// output rows `first .. first + count`.
pub(crate) fn input_rows(
    (k, s, p): (usize, usize, usize),
    h: usize,
    (first, count): (usize, usize),
) -> core::ops::Range<usize> {
    if count == 0 {
        return 0..0;
    }
    // Output row o reads input rows o * s - p .. o * s - p + k (the loader checked p < k).
    let end = ((first + count - 1) * s + k).saturating_sub(p).min(h);
    (first * s).saturating_sub(p).min(end)..end
}

/// The kernel rows through which input row `y` of a convolution (kernel, stride, padding)
/// reaches output rows `first .. first + count` (those whose output row `(y + p - ky) / s`,
/// when whole, lies there).
#[inline(always)]
pub(crate) fn kernel_rows(
    y: usize,
    (k, s, p): (usize, usize, usize),
    (first, count): (usize, usize),
) -> core::ops::Range<usize> {
    let t = y + p + 1;
    let hi = t.saturating_sub(first * s).min(k);
    t.saturating_sub((first + count) * s).min(hi)..hi
}

/// Convolution: every non-zero input at (y, x, c) adds, for every kernel offset (ky, kx) that
/// maps it onto an output pixel, the weight row (ky, kx, c) into that pixel's channels. Only
/// output rows `first .. first + count` are computed, into `mem`, which holds those rows.
#[inline(never)]
fn conv<const TUNED: bool>(
    values: &[u8],
    (k, s, p): ConvGeometry,
    inp: Dims,
    out: Dims,
    (first, count): (usize, usize),
    events: &[u8],
    mem: &mut [i32],
) -> u64 {
    let (k, s, p) = (k as usize, s as usize, p as usize);
    let per_offset = inp.c * out.c;
    let mut ops = 0u64;
    let ys = input_rows((k, s, p), inp.h, (first, count));
    let row = inp.w * inp.c;
    let events = events.get(ys.start * row..ys.end * row).unwrap_or_default();
    // The output row (in the window) of input row y through kernel row ky in `kys`.
    let out_row =
        |y: usize, ky: usize| out_index(y, ky, s, p, out.h).map(|o| o.wrapping_sub(first));
    let (mut y, mut x) = (ys.start, 0);
    let mut kys = kernel_rows(y, (k, s, p), (first, count));
    let mut nz = NonZero::new();
    for chans in events.chunks_exact(inp.c) {
        if !TUNED {
            // Event by event, then kernel offset: the host's order (the row loops vectorise).
            for (ci, &v) in chans.iter().enumerate() {
                if v == 0 {
                    continue;
                }
                for ky in kys.clone() {
                    let Some(oy) = out_row(y, ky) else {
                        continue;
                    };
                    for kx in 0..k {
                        let Some(ox) = out_index(x, kx, s, p, out.w) else {
                            continue;
                        };
                        let o = (oy * out.w + ox) * out.c;
                        let w = (ky * k + kx) * per_offset + ci * out.c;
                        if let (Some(m), Some(row)) =
                            (mem.get_mut(o..o + out.c), values.get(w..w + out.c))
                        {
                            add_row_plain(m, row, v as i32);
                            ops += out.c as u64;
                        }
                    }
                }
            }
        } else {
            // The pixel's non-zero events found once, then kernel offset by offset, two at a
            // time into the same membranes.
            for (part, c0) in chans.chunks(LIST).zip((0..).step_by(LIST)) {
                let list = nz.fill(part);
                if list.is_empty() {
                    continue;
                }
                for ky in kys.clone() {
                    let Some(oy) = out_row(y, ky) else {
                        continue;
                    };
                    for kx in 0..k {
                        let Some(ox) = out_index(x, kx, s, p, out.w) else {
                            continue;
                        };
                        let o = (oy * out.w + ox) * out.c;
                        let w = (ky * k + kx) * per_offset + c0 * out.c;
                        let (Some(m), Some(rows)) = (span(mem, o, out.c), values.get(w..)) else {
                            continue;
                        };
                        add_list(m, rows, out.c, list);
                        ops += (list.len() * out.c) as u64;
                    }
                }
            }
        }
        x += 1;
        if x == inp.w {
            (x, y) = (0, y + 1);
            kys = kernel_rows(y, (k, s, p), (first, count));
        }
    }
    ops
}

/// The arguments of [`rows_conv`], run with the rows' concrete type.
struct RowsConv<'e, 'm> {
    geometry: ConvGeometry,
    inp: Dims,
    out: Dims,
    window: (usize, usize),
    events: &'e [u8],
    mem: &'m mut [i32],
}

impl ListKernel for RowsConv<'_, '_> {
    fn run<R: AddList>(self, rows: &R) -> u64 {
        let RowsConv {
            geometry,
            inp,
            out,
            window,
            events,
            mem,
        } = self;
        rows_conv(rows, geometry, inp, out, window, events, mem)
    }
}

/// [`conv`] for the other formats (`weights::Unsaturated`), in its Cortex-M order: input
/// pixel by input pixel, kernel offset by offset, the rows of the pixel's non-zero events
/// (found once per pixel) into the output pixel's membranes. One copy per row type of
/// [`Unsaturated::with_list`]: Ell rows call their loop (`weights::ell_rows`) directly, the
/// others go through `Unsaturated::add_list`, which dispatches on the format.
#[inline(never)]
fn rows_conv<R: AddList>(
    rows: &R,
    (k, s, p): ConvGeometry,
    inp: Dims,
    out: Dims,
    (first, count): (usize, usize),
    events: &[u8],
    mem: &mut [i32],
) -> u64 {
    let (k, s, p) = (k as usize, s as usize, p as usize);
    let mut ops = 0u64;
    let ys = input_rows((k, s, p), inp.h, (first, count));
    let row = inp.w * inp.c;
    let events = events.get(ys.start * row..ys.end * row).unwrap_or_default();
    let (mut y, mut x) = (ys.start, 0);
    let mut kys = kernel_rows(y, (k, s, p), (first, count));
    let mut nz = NonZero::new();
    for chans in events.chunks_exact(inp.c) {
        for (part, c0) in chans.chunks(LIST).zip((0..).step_by(LIST)) {
            let list = nz.fill(part);
            if list.is_empty() {
                continue;
            }
            for ky in kys.clone() {
                let Some(oy) = out_index(y, ky, s, p, out.h) else {
                    continue;
                };
                for kx in 0..k {
                    let Some(ox) = out_index(x, kx, s, p, out.w) else {
                        continue;
                    };
                    let o = (oy.wrapping_sub(first) * out.w + ox) * out.c;
                    let Some(m) = span(mem, o, out.c) else {
                        continue;
                    };
                    ops += rows.add_list((ky * k + kx) * inp.c + c0, list, m);
                }
            }
        }
        x += 1;
        if x == inp.w {
            (x, y) = (0, y + 1);
            kys = kernel_rows(y, (k, s, p), (first, count));
        }
    }
    ops
}

/// `mem[o..o + n]`, found without the overflow check that the range `o..o + n` costs.
#[inline(always)]
fn span(mem: &mut [i32], o: usize, n: usize) -> Option<&mut [i32]> {
    mem.get_mut(o..).and_then(|m| m.get_mut(..n))
}

/// The output coordinate that input coordinate `i` reaches through kernel offset `kk`.
#[inline(always)]
pub(crate) fn out_index(i: usize, kk: usize, s: usize, p: usize, n: usize) -> Option<usize> {
    let t = (i + p).checked_sub(kk)?;
    let o = if s == 1 {
        t
    } else if t % s == 0 {
        t / s
    } else {
        return None;
    };
    (o < n).then_some(o)
}

/// Low byte of each 16-bit lane.
const LANES: u32 = 0x00FF_00FF;

/// The window's columns in the low and the high lane of each of [`scan`]'s sums.
const LANE_COLUMNS: [(usize, usize); 5] = [(0, 2), (1, 3), (4, 6), (5, 7), (8, 9)];

/// `out[c] += v * row[c]` for every column, without saturation (the caller proved that none
/// is needed).
fn add_row(out: &mut [i32], row: &[u8], v: i32) {
    let n = out.len().min(row.len());
    let whole = n / 4 * 4;
    let (mut out, tail_out) = out[..n].split_at_mut(whole);
    let (mut row, tail_row) = row[..n].split_at(whole);
    while out.len() >= 4 && row.len() >= 4 {
        let (m, rest_out) = core::mem::take(&mut out).split_at_mut(4);
        let (w, rest_row) = row.split_at(4);
        if let (Ok(m), Ok(w)) = (<&mut [i32; 4]>::try_from(m), <&[u8; 4]>::try_from(w)) {
            let a = *m;
            let x = |i: usize| a[i].wrapping_add(v.wrapping_mul(w[i] as i8 as i32));
            *m = [x(0), x(1), x(2), x(3)];
        }
        (out, row) = (rest_out, rest_row);
    }
    for (m, &b) in tail_out.iter_mut().zip(tail_row) {
        *m = m.wrapping_add(v.wrapping_mul(b as i8 as i32));
    }
}

/// `out[c] += v1 * r1[c] + v2 * r2[c]`: two events into the same membranes, each membrane
/// loaded and stored once for both (written out four membranes at a time, because loops are
/// not unrolled when the firmware is optimised for size).
fn add_rows2(out: &mut [i32], (r1, v1): (&[u8], i32), (r2, v2): (&[u8], i32)) {
    let n = out.len().min(r1.len()).min(r2.len());
    let whole = n / 4 * 4;
    let (mut out, tail_out) = out[..n].split_at_mut(whole);
    let (mut r1, tail_1) = r1[..n].split_at(whole);
    let (mut r2, tail_2) = r2[..n].split_at(whole);
    while out.len() >= 4 && r1.len() >= 4 && r2.len() >= 4 {
        let (m, rest_out) = core::mem::take(&mut out).split_at_mut(4);
        let ((a, rest_1), (b, rest_2)) = (r1.split_at(4), r2.split_at(4));
        let m = <&mut [i32; 4]>::try_from(m);
        let (a, b) = (<&[u8; 4]>::try_from(a), <&[u8; 4]>::try_from(b));
        if let (Ok(m), Ok(a), Ok(b)) = (m, a, b) {
            let x = *m;
            let y = |i: usize| {
                let s = x[i].wrapping_add(v1.wrapping_mul(a[i] as i8 as i32));
                s.wrapping_add(v2.wrapping_mul(b[i] as i8 as i32))
            };
            *m = [y(0), y(1), y(2), y(3)];
        }
        (out, r1, r2) = (rest_out, rest_1, rest_2);
    }
    for ((m, &a), &b) in tail_out.iter_mut().zip(tail_1).zip(tail_2) {
        let s = m.wrapping_add(v1.wrapping_mul(a as i8 as i32));
        *m = s.wrapping_add(v2.wrapping_mul(b as i8 as i32));
    }
}

/// Most events [`NonZero`] gathers at once: channels of one input pixel, or inputs of a dense
/// layer, are taken in chunks of this many.
pub(crate) const LIST: usize = 32;

/// The non-zero events among at most [`LIST`] consecutive ones, as (index from the first,
/// value). A convolution finds them once per input pixel and then walks only them at each
/// of the kernel's offsets, instead of testing every channel at every offset.
pub(crate) struct NonZero {
    list: [(u8, u8); LIST],
    len: usize,
}

impl NonZero {
    pub(crate) fn new() -> Self {
        NonZero {
            list: [(0, 0); LIST],
            len: 0,
        }
    }

    /// The non-zero events of `events` (its first [`LIST`]), in order. Not inlined: its loops
    /// would take registers from the kernels' own.
    #[inline(never)]
    pub(crate) fn fill(&mut self, events: &[u8]) -> &[(u8, u8)] {
        self.len = 0;
        let events = events.get(..LIST).unwrap_or(events);
        if COMPACT {
            // The smallest code: one test per event.
            self.push(0, events);
        } else {
            // Four events per word: most words of a sparse map are zero and cost one test.
            let mut words = events.chunks_exact(4);
            let mut at = 0;
            for w in &mut words {
                if u32::from_le_bytes([w[0], w[1], w[2], w[3]]) != 0 {
                    self.push(at, w);
                }
                at += 4;
            }
            self.push(at, words.remainder());
        }
        self.list.get(..self.len).unwrap_or_default()
    }

    /// Appends the non-zero events of `events`, the first at index `at`.
    #[inline(always)]
    fn push(&mut self, at: usize, events: &[u8]) {
        for (i, &v) in events.iter().enumerate() {
            if let (true, Some(slot)) = (v != 0, self.list.get_mut(self.len)) {
                *slot = ((at + i) as u8, v);
                self.len += 1;
            }
        }
    }
}

/// `out[c] += v * rows[i * cols + c]` for each `(i, v)` of `list`, two events at a time
/// ([`add_rows2`]).
#[inline(always)]
fn add_list(out: &mut [i32], rows: &[u8], cols: usize, list: &[(u8, u8)]) {
    let row = |i: u8| rows.get(i as usize * cols..).unwrap_or_default();
    let mut pairs = list.chunks_exact(2);
    for pair in &mut pairs {
        let ((i1, v1), (i2, v2)) = (pair[0], pair[1]);
        add_rows2(out, (row(i1), v1 as i32), (row(i2), v2 as i32));
    }
    if let [(i, v)] = pairs.remainder() {
        add_row(out, row(*i), *v as i32);
    }
}

/// Adds the rows of the non-zero events to `out`: `rows` yields each event's value and weight
/// row. On Cortex-M two events at a time ([`add_rows2`]); elsewhere one by one in plain loops
/// that the compiler vectorises ([`add_row_plain`]).
#[inline(always)]
fn add_events<'r, const TUNED: bool>(out: &mut [i32], rows: impl Iterator<Item = (u8, &'r [u8])>) {
    if !TUNED {
        for (v, row) in rows {
            if v != 0 {
                add_row_plain(out, row, v as i32);
            }
        }
        return;
    }
    let mut pending = None;
    for (v, row) in rows {
        if v != 0 {
            match pending.take() {
                Some(first) => add_rows2(out, first, (row, v as i32)),
                None => pending = Some((row, v as i32)),
            }
        }
    }
    if let Some((row, v)) = pending {
        add_row(out, row, v);
    }
}

/// [`add_row`] as plain loops, the form a host compiler vectorises (spikes, `v == 1`, need no
/// multiplication).
fn add_row_plain(out: &mut [i32], row: &[u8], v: i32) {
    if v == 1 {
        for (m, &b) in out.iter_mut().zip(row) {
            *m = m.wrapping_add(b as i8 as i32);
        }
    } else {
        for (m, &b) in out.iter_mut().zip(row) {
            *m = m.wrapping_add(v.wrapping_mul(b as i8 as i32));
        }
    }
}

/// A dense layer of `cols` outputs (at least 10) with int8 weights `values` (`events.len()`
/// rows): adds `e * W[r, c]` to `mem[c]` for every non-zero event `e = events[r]`, whose
/// values are at most `max_act`. Returns the synaptic operations.
#[inline(never)]
fn dense_windows(values: &[u8], cols: usize, max_act: u32, events: &[u8], mem: &mut [i32]) -> u64 {
    if cols < WINDOW || values.len() != events.len() * cols {
        return dense_rows::<true>(values, cols, events, mem);
    }
    let spikes = max_act <= 1;
    let chunk = 256 / max_act.clamp(1, 256) as usize;
    let mut nonzero = 0u64;
    for (k, ev) in events.chunks(chunk).enumerate() {
        let (sum, n) = tally(ev, spikes);
        if n == 0 {
            continue;
        }
        nonzero += n as u64;
        let rows = &values[k * chunk * cols..];
        // Windows at 0, 10, ...; the last one ends at `cols` and may overlap the one before,
        // whose columns it skips.
        let mut done = 0;
        while done < cols {
            let start = done.min(cols - WINDOW);
            let lanes = if spikes {
                scan::<true>(&rows[start..], cols, ev)
            } else {
                scan::<false>(&rows[start..], cols, ev)
            };
            let off = 128 * sum as i32;
            for (&lane, &(lo, hi)) in lanes.iter().zip(&LANE_COLUMNS) {
                for (c, v) in [(lo, lane & 0xFFFF), (hi, lane >> 16)] {
                    if let (true, Some(m)) = (c + start >= done, mem.get_mut(start + c)) {
                        *m = m.wrapping_add(v as i32 - off);
                    }
                }
            }
            done = start + WINDOW;
        }
    }
    nonzero * cols as u64
}

/// The sum of the event values and the number of non-zero ones (equal for spikes), four
/// events at a time. At most 256 events (the sum's 16-bit lanes cannot carry).
fn tally(events: &[u8], spikes: bool) -> (u32, u32) {
    let mut words = events.chunks_exact(4);
    let (mut sum, mut n) = (0u32, 0u32);
    for w in &mut words {
        let x = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        sum = sum.wrapping_add((x & LANES) + ((x >> 8) & LANES));
        if !spikes {
            // Bit 7 of each byte: whether it is non-zero.
            let y = (((x & 0x7F7F_7F7F) + 0x7F7F_7F7F) | x) & 0x8080_8080;
            n += (y >> 7).wrapping_mul(0x0101_0101) >> 24;
        }
    }
    let mut sum = (sum & 0xFFFF) + (sum >> 16);
    for &e in words.remainder() {
        sum += e as u32;
        n += (e != 0) as u32;
    }
    (sum, if spikes { sum } else { n })
}

/// Four weights from byte `o` of a window, each offset by 128.
#[inline(always)]
fn word(w: &[u8; WINDOW], o: usize) -> u32 {
    u32::from_le_bytes([w[o], w[o + 1], w[o + 2], w[o + 3]]) ^ 0x8080_8080
}

/// Adds `e` times a window's weights to the five lane sums (module documentation).
#[inline(always)]
fn add_window<const ONE: bool>(l: &mut [u32; 5], w: &[u8; WINDOW], e: u8) {
    let (x0, x1) = (word(w, 0), word(w, 4));
    let y = u16::from_le_bytes([w[8], w[9]]) as u32;
    let terms = [
        x0 & LANES,
        (x0 >> 8) & LANES,
        x1 & LANES,
        (x1 >> 8) & LANES,
        ((y | (y << 8)) & LANES) ^ 0x0080_0080,
    ];
    if ONE {
        l[0] = l[0].wrapping_add(terms[0]);
        l[1] = l[1].wrapping_add(terms[1]);
        l[2] = l[2].wrapping_add(terms[2]);
        l[3] = l[3].wrapping_add(terms[3]);
        l[4] = l[4].wrapping_add(terms[4]);
    } else {
        let e = e as u32;
        l[0] = l[0].wrapping_add(terms[0].wrapping_mul(e));
        l[1] = l[1].wrapping_add(terms[1].wrapping_mul(e));
        l[2] = l[2].wrapping_add(terms[2].wrapping_mul(e));
        l[3] = l[3].wrapping_add(terms[3].wrapping_mul(e));
        l[4] = l[4].wrapping_add(terms[4].wrapping_mul(e));
    }
}

/// The lane sums of the window that starts at each `stride`-th byte of `region` over the
/// events (their values sum to at most 256). `ONE`: every non-zero event is 1 (spikes).
#[inline(never)]
fn scan<const ONE: bool>(region: &[u8], stride: usize, events: &[u8]) -> [u32; 5] {
    let mut l = [0u32; 5];
    if stride < WINDOW {
        return l;
    }
    let full = (region.len() / stride).min(events.len());
    for (row, &e) in region.chunks_exact(stride).zip(&events[..full]) {
        if e != 0 {
            if let Some(w) = row.first_chunk() {
                add_window::<ONE>(&mut l, w, e);
            }
        }
    }
    // The matrix's last row: shorter than the stride from the window's start.
    let last = region.get(full * stride..).and_then(|r| r.first_chunk());
    if let (Some(&e), Some(w)) = (events.get(full), last) {
        if e != 0 {
            add_window::<ONE>(&mut l, w, e);
        }
    }
    l
}

/// The Cortex-M kernels against the plain ones, on every target (the host runs the plain ones
/// in the engine, so the proptests of `tests/kernels.rs` do not reach these there).
#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// xorshift32 test data (also used by the tests of `weights`).
    pub(crate) struct Rand(pub(crate) u32);

    impl Rand {
        pub(crate) fn below(&mut self, n: u32) -> u32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 17;
            self.0 ^= self.0 << 5;
            self.0 % n.max(1)
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            // Now and then every weight at an extreme, to fill the lanes.
            match self.below(8) {
                0 => vec![0x80; n],
                1 => vec![0x7F; n],
                _ => (0..n).map(|_| self.below(256) as u8).collect(),
            }
        }
        fn events(&mut self, n: usize, max: u32) -> Vec<u8> {
            let density = self.below(101);
            (0..n)
                .map(|_| {
                    if self.below(100) < density {
                        1 + self.below(max) as u8
                    } else {
                        0
                    }
                })
                .collect()
        }
        fn membranes(&mut self, n: usize) -> Vec<i32> {
            (0..n)
                .map(|_| self.below(2_000_001) as i32 - 1_000_000)
                .collect()
        }
    }

    #[test]
    fn row_kernels_equal_plain_loops() {
        let mut r = Rand(7);
        for _ in 0..3000 {
            let cols = r.below(41) as usize;
            let (w1, w2) = (r.bytes(cols), r.bytes(cols));
            let v1 = if r.below(2) == 0 {
                1
            } else {
                r.below(256) as i32
            };
            let v2 = r.below(256) as i32;
            let mem = r.membranes(cols);
            let (mut a, mut b) = (mem.clone(), mem);
            add_row(&mut a, &w1, v1);
            add_row_plain(&mut b, &w1, v1);
            assert_eq!(a, b);
            add_rows2(&mut a, (&w1, v1), (&w2, v2));
            add_row_plain(&mut b, &w1, v1);
            add_row_plain(&mut b, &w2, v2);
            assert_eq!(a, b, "cols {cols} v {v1} {v2}");
        }
    }

    #[test]
    fn dense_windows_equal_dense_rows() {
        let mut r = Rand(11);
        for _ in 0..3000 {
            let cols = 1 + r.below(25) as usize;
            let rows = r.below(700) as usize;
            let max_act = [1, 1, 2, 4, 9, 16, 255][r.below(7) as usize];
            let values = r.bytes(rows * cols);
            let events = r.events(rows, max_act);
            let mem = r.membranes(cols);
            let (mut a, mut b) = (mem.clone(), mem);
            let ops = dense_windows(&values, cols, max_act, &events, &mut a);
            let want = dense_rows::<false>(&values, cols, &events, &mut b);
            assert_eq!((ops, a), (want, b), "rows {rows} cols {cols} max {max_act}");
        }
    }

    #[test]
    fn tuned_conv_and_dense_rows_equal_plain_ones() {
        let mut r = Rand(13);
        for _ in 0..1500 {
            // Now and then more channels than `NonZero` takes at once.
            let most = if r.below(4) == 0 { 80 } else { 20 };
            let c = 1 + r.below(most);
            let (h, w) = (1 + r.below(8), 1 + r.below(8));
            let (k, s) = (1 + r.below(3), 1 + r.below(2));
            let p = r.below(k);
            if h + 2 * p < k || w + 2 * p < k {
                continue;
            }
            let inp = Dims {
                h: h as usize,
                w: w as usize,
                c: c as usize,
            };
            let out = Dims {
                h: ((h + 2 * p - k) / s + 1) as usize,
                w: ((w + 2 * p - k) / s + 1) as usize,
                c: 1 + r.below(40) as usize,
            };
            let geometry = (k as u8, s as u8, p as u8);
            let values = r.bytes((k * k) as usize * inp.c * out.c);
            let events = r.events(inp.h * inp.w * inp.c, 4);
            let mem = r.membranes(out.h * out.w * out.c);
            let mem_before = mem.clone();
            let (mut a, mut b) = (mem.clone(), mem);
            let all = (0, out.h);
            let ops = conv::<true>(&values, geometry, inp, out, all, &events, &mut a);
            let want = conv::<false>(&values, geometry, inp, out, all, &events, &mut b);
            assert_eq!((ops, &a), (want, &b), "{inp:?} -> {out:?} {geometry:?}");
            // Output rows one or two at a time (as a recomputed direct-input current): the
            // same sums and operations as the whole map.
            let (rows, mut ops_rows) = (1 + r.below(2) as usize, 0);
            let mut c = mem_before.clone();
            for first in (0..out.h).step_by(rows) {
                let n = rows.min(out.h - first);
                let part = &mut c[first * out.w * out.c..(first + n) * out.w * out.c];
                ops_rows += conv::<true>(&values, geometry, inp, out, (first, n), &events, part);
            }
            assert_eq!(
                (ops_rows, &c),
                (want, &b),
                "{inp:?} -> {out:?} {geometry:?} by {rows}"
            );
            // The same weights as a dense layer over the first rows.
            let cols = out.c;
            let rows = values.len() / cols;
            let events = r.events(rows, 255);
            let mem = r.membranes(cols);
            let (mut a, mut b) = (mem.clone(), mem);
            let ops = dense_rows::<true>(&values, cols, &events, &mut a);
            assert_eq!(
                (ops, a),
                (dense_rows::<false>(&values, cols, &events, &mut b), b)
            );
        }
    }
}
