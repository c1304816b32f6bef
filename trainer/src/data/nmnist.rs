//! N-MNIST event streams in their native binary format (Orchard et al. 2015).
//!
//! A sample file is a sequence of 5-byte (40-bit) events, no header: byte 0 = x, byte 1 = y
//! (both 0..=33 on the 34x34 sensor), bit 7 of byte 2 = polarity (1 = ON, 0 = OFF), and the
//! 23 remaining bits `(b2 & 0x7f) << 16 | b3 << 8 | b4` = timestamp in microseconds. The
//! dataset is laid out as `Train/<digit>/<NNNNN>.bin` and `Test/<digit>/<NNNNN>.bin`.
//! [`to_frames`] bins a stream into frames for the networks.
//!
//! ```no_run
//! use ember_trainer::data::nmnist;
//! let set = nmnist::load(std::path::Path::new("nmnist_subset"))?;
//! let frames = nmnist::to_frames(&set.train[0].events, 10, nmnist::SIDE, nmnist::SIDE);
//! assert_eq!(frames.len(), 10 * 34 * 34 * 2);
//! # Ok::<(), nmnist::NmnistError>(())
//! ```

use std::path::{Path, PathBuf};

/// Sensor side in pixels.
pub const SIDE: usize = 34;
/// Bytes of one event.
pub const EVENT_BYTES: usize = 5;
/// Channels of a frame: OFF events (0) and ON events (1).
pub const POLARITIES: usize = 2;

/// What can be wrong with an N-MNIST folder or event file.
#[derive(Debug, thiserror::Error)]
pub enum NmnistError {
    /// A file or folder could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a whole number of 5-byte events (truncated or not N-MNIST).
    #[error(
        "{path}: {len} bytes is not a multiple of the {EVENT_BYTES}-byte event \
         (truncated, or not an N-MNIST binary file)"
    )]
    BadLength {
        /// The file.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// An event lies outside the 34x34 sensor.
    #[error("{path}: event {index} at x={x}, y={y} is outside the {SIDE}x{SIDE} sensor")]
    OutOfRange {
        /// The file.
        path: PathBuf,
        /// Event index in the file.
        index: usize,
        /// Its column.
        x: u8,
        /// Its row.
        y: u8,
    },
    /// A split folder holds no `<digit>/*.bin` file.
    #[error("{dir}: no <digit>/*.bin sample; pass the N-MNIST folder holding Train/ and Test/")]
    NoSamples {
        /// The split folder.
        dir: PathBuf,
    },
}

/// One sensor event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Column, 0..34.
    pub x: u8,
    /// Row, 0..34.
    pub y: u8,
    /// True for an ON (brighter) event.
    pub on: bool,
    /// Time in microseconds from the start of the recording.
    pub t: u32,
}

/// One recording and its digit.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The events, in file order (time order in N-MNIST).
    pub events: Vec<Event>,
    /// The digit shown.
    pub label: u8,
}

/// The two splits of an N-MNIST folder.
#[derive(Debug, Clone)]
pub struct Nmnist {
    /// Samples of `Train/`.
    pub train: Vec<Sample>,
    /// Samples of `Test/`.
    pub test: Vec<Sample>,
}

/// Loads `Train/` and `Test/` of `dir`.
pub fn load(dir: &Path) -> Result<Nmnist, NmnistError> {
    Ok(Nmnist {
        train: load_split(&dir.join("Train"))?,
        test: load_split(&dir.join("Test"))?,
    })
}

/// Loads every `<digit>/*.bin` of a split folder, digit by digit, files in name order;
/// other entries are ignored.
pub fn load_split(dir: &Path) -> Result<Vec<Sample>, NmnistError> {
    let mut samples = Vec::new();
    for label in 0..=9u8 {
        let class_dir = dir.join(label.to_string());
        if !class_dir.is_dir() {
            continue;
        }
        for path in bin_files(&class_dir)? {
            samples.push(Sample {
                events: read_events(&path)?,
                label,
            });
        }
    }
    if samples.is_empty() {
        return Err(NmnistError::NoSamples {
            dir: dir.to_path_buf(),
        });
    }
    Ok(samples)
}

/// The `*.bin` files of `dir`, sorted by name.
fn bin_files(dir: &Path) -> Result<Vec<PathBuf>, NmnistError> {
    let io = |source| NmnistError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "bin") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads the events of one sample file.
pub fn read_events(path: &Path) -> Result<Vec<Event>, NmnistError> {
    let bytes = std::fs::read(path).map_err(|source| NmnistError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if bytes.len() % EVENT_BYTES != 0 {
        return Err(NmnistError::BadLength {
            path: path.to_path_buf(),
            len: bytes.len(),
        });
    }
    let mut events = Vec::with_capacity(bytes.len() / EVENT_BYTES);
    for (index, b) in bytes.chunks_exact(EVENT_BYTES).enumerate() {
        let event = decode(b);
        if usize::from(event.x) >= SIDE || usize::from(event.y) >= SIDE {
            return Err(NmnistError::OutOfRange {
                path: path.to_path_buf(),
                index,
                x: event.x,
                y: event.y,
            });
        }
        events.push(event);
    }
    Ok(events)
}

/// Decodes one 5-byte event.
fn decode(b: &[u8]) -> Event {
    Event {
        x: b[0],
        y: b[1],
        on: b[2] & 0x80 != 0,
        t: u32::from(b[2] & 0x7f) << 16 | u32::from(b[3]) << 8 | u32::from(b[4]),
    }
}

/// Encodes one event in the native format (the inverse of the reader; for tests and tools).
pub fn encode(e: &Event) -> [u8; EVENT_BYTES] {
    [
        e.x,
        e.y,
        u8::from(e.on) << 7 | ((e.t >> 16) & 0x7f) as u8,
        (e.t >> 8) as u8,
        e.t as u8,
    ]
}

/// Counts `events` into `bins` frames of `height x width x 2`, channels-last: frame after
/// frame, pixel after pixel, OFF count then ON count, each saturating at 255.
///
/// The bins split `0..=t_last` (the last timestamp of the stream) into equal spans; event
/// `t` goes to bin `t * bins / (t_last + 1)`. Events outside `height x width` are dropped.
/// Returns `bins * height * width * 2` bytes (all zero for an empty stream).
pub fn to_frames(events: &[Event], bins: usize, height: usize, width: usize) -> Vec<u8> {
    let frame = height * width * POLARITIES;
    let mut out = vec![0u8; bins * frame];
    let t_last = events.iter().map(|e| e.t).max();
    let (Some(t_last), false) = (t_last, out.is_empty()) else {
        return out;
    };
    let span = u64::from(t_last) + 1;
    for e in events {
        let (x, y) = (usize::from(e.x), usize::from(e.y));
        if x >= width || y >= height {
            continue;
        }
        let bin = (u64::from(e.t) * bins as u64 / span) as usize;
        let i = bin * frame + (y * width + x) * POLARITIES + usize::from(e.on);
        out[i] = out[i].saturating_add(1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(x: u8, y: u8, on: bool, t: u32) -> Event {
        Event { x, y, on, t }
    }

    fn write(path: &Path, events: &[Event]) {
        let bytes: Vec<u8> = events.iter().flat_map(encode).collect();
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn decodes_the_40_bit_layout() {
        // x=3, y=33, ON, t = 0x7f_1234 (largest 23-bit high part).
        let e = decode(&[3, 33, 0xff, 0x12, 0x34]);
        assert_eq!(e, ev(3, 33, true, 0x7f_1234));
        assert_eq!(decode(&[0, 0, 0x01, 0, 5]), ev(0, 0, false, 0x01_0005));
        assert_eq!(encode(&e), [3, 33, 0xff, 0x12, 0x34]);
    }

    #[test]
    fn reads_written_file_and_folder_layout() {
        let dir = tempfile::tempdir().unwrap();
        let events = [
            ev(0, 0, false, 0),
            ev(33, 2, true, 150),
            ev(5, 33, true, 8_000_000),
        ];
        for (split, digit, name) in [
            ("Train", 7, "00002.bin"),
            ("Train", 1, "00001.bin"),
            ("Test", 0, "00004.bin"),
        ] {
            let d = dir.path().join(split).join(digit.to_string());
            std::fs::create_dir_all(&d).unwrap();
            write(&d.join(name), &events[..digit.min(3)]);
        }
        std::fs::write(dir.path().join("Train/README"), "not a class").unwrap();
        std::fs::write(dir.path().join("Train/7/notes.txt"), "skipped").unwrap();
        let p = dir.path().join("Train/7/00002.bin");
        assert_eq!(read_events(&p).unwrap(), events);
        let set = load(dir.path()).unwrap();
        let labels: Vec<u8> = set.train.iter().map(|s| s.label).collect();
        assert_eq!(labels, vec![1, 7]);
        assert_eq!(set.train[0].events, events[..1]);
        assert_eq!((set.test.len(), set.test[0].label), (1, 0));
        assert!(set.test[0].events.is_empty());
    }

    #[test]
    fn corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("1.bin");
        std::fs::write(&p, [1, 2, 3, 4, 5, 6]).unwrap();
        let e = read_events(&p).unwrap_err();
        assert!(matches!(e, NmnistError::BadLength { len: 6, .. }), "{e}");
        assert!(e.to_string().contains(&*p.to_string_lossy()), "{e}");

        std::fs::write(&p, [1, 2, 0, 0, 0, 34, 0, 0, 0, 0]).unwrap();
        let e = read_events(&p).unwrap_err();
        assert!(
            matches!(
                e,
                NmnistError::OutOfRange {
                    index: 1,
                    x: 34,
                    y: 0,
                    ..
                }
            ),
            "{e}"
        );

        let e = load(dir.path()).unwrap_err();
        assert!(matches!(e, NmnistError::NoSamples { .. }), "{e}");
        assert!(e.to_string().contains("Train"), "{e}");
        assert!(matches!(
            read_events(&dir.path().join("missing.bin")),
            Err(NmnistError::Io { .. })
        ));
    }

    #[test]
    fn frames_bin_time_and_saturate() {
        // t_last = 99: bins of 25 us with 4 bins.
        let mut events = vec![
            ev(1, 2, true, 0),
            ev(1, 2, false, 24),
            ev(0, 0, true, 25),
            ev(3, 3, true, 99),
        ];
        events.extend(std::iter::repeat_n(ev(2, 0, false, 60), 300));
        events.push(ev(40, 0, true, 10)); // outside a 4x4 frame: dropped
        let f = to_frames(&events, 4, 4, 4);
        assert_eq!(f.len(), 4 * 4 * 4 * 2);
        let at = |bin: usize, y: usize, x: usize, p: usize| f[bin * 32 + (y * 4 + x) * 2 + p];
        assert_eq!((at(0, 2, 1, 1), at(0, 2, 1, 0)), (1, 1));
        assert_eq!(at(1, 0, 0, 1), 1);
        assert_eq!(at(2, 0, 2, 0), 255);
        assert_eq!(at(3, 3, 3, 1), 1);
        assert_eq!(f.iter().map(|&v| usize::from(v)).sum::<usize>(), 4 + 255);
        assert_eq!(to_frames(&[], 3, SIDE, SIDE), vec![0; 3 * SIDE * SIDE * 2]);
        assert!(to_frames(&events, 0, 4, 4).is_empty());
    }

    /// The N-MNIST subset in `$EMBER_DATA/nmnist_subset` or `../shared/data/nmnist_subset`
    /// (counts from its SOURCES.md).
    #[test]
    fn shared_subset_loads() {
        let Some(dir) = crate::data::shared_data("nmnist_subset") else {
            eprintln!("skipped: nmnist_subset not found in $EMBER_DATA or ../shared/data");
            return;
        };
        let set = load(&dir).unwrap();
        assert_eq!((set.train.len(), set.test.len()), (1000, 100));
        let mut counts = [0usize; 10];
        for s in &set.train {
            counts[usize::from(s.label)] += 1;
        }
        assert_eq!(counts, [97, 116, 99, 93, 105, 92, 94, 117, 87, 100]);
        for s in set.train.iter().chain(&set.test) {
            assert!((1069..=7152).contains(&s.events.len()));
            assert!(s.events.windows(2).all(|w| w[0].t <= w[1].t));
        }
        let frames = to_frames(&set.test[0].events, 8, SIDE, SIDE);
        assert!(frames
            .chunks(SIDE * SIDE * 2)
            .all(|f| f.iter().any(|&c| c > 0)));
    }
}
