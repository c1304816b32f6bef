//! CIFAR-10 in its binary version (`cifar-10-batches-bin`).
//!
//! A batch file is a sequence of 3073-byte records, no header: one label byte (0..=9), then
//! the 32x32 image as three planes of 1024 bytes (red, green, blue), each row-major. The
//! loader transposes each image to channels-last (HWC: pixel after pixel, `r g b` each), the
//! layout the runtime and [`crate::net`] use.
//!
//! ```no_run
//! let cifar = ember_trainer::data::cifar10::load(std::path::Path::new("cifar-10-batches-bin"))?;
//! assert_eq!(cifar.train.image(0).len(), 32 * 32 * 3);
//! # Ok::<(), ember_trainer::data::cifar10::Cifar10Error>(())
//! ```

use std::path::{Path, PathBuf};

/// Image side in pixels.
pub const SIDE: usize = 32;
/// Colour channels.
pub const CHANNELS: usize = 3;
/// Bytes of one record: the label and the three colour planes.
pub const RECORD_BYTES: usize = 1 + SIDE * SIDE * CHANNELS;
/// The five training batches, in order.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test batch.
pub const TEST_FILE: &str = "test_batch.bin";

/// What can be wrong with a CIFAR-10 directory or one of its batch files.
#[derive(Debug, thiserror::Error)]
pub enum Cifar10Error {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is empty or not a whole number of records (truncated or not a CIFAR-10 batch).
    #[error(
        "{path}: {len} bytes is not a positive multiple of the {RECORD_BYTES}-byte record \
         (truncated, or not a CIFAR-10 binary batch)"
    )]
    BadLength {
        /// The file.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// A label is not a class 0..=9.
    #[error("{path}: label {label} of record {index} is not a class 0..=9")]
    BadLabel {
        /// The file.
        path: PathBuf,
        /// Record index in the file.
        index: usize,
        /// The value found.
        label: u8,
    },
    /// A batch file is not in the directory.
    #[error(
        "{dir}: no {name}; pass the cifar-10-batches-bin folder \
         (data_batch_1.bin .. data_batch_5.bin, test_batch.bin)"
    )]
    Missing {
        /// The directory searched.
        dir: PathBuf,
        /// The file name looked for.
        name: &'static str,
    },
}

/// Colour images and their labels, channels-last (HWC).
#[derive(Debug, Clone)]
pub struct ImageSet {
    /// Pixels, image after image, each `height x width x channels` in HWC order.
    pub images: Vec<u8>,
    /// One class per image.
    pub labels: Vec<u8>,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Channels per pixel.
    pub channels: usize,
}

impl ImageSet {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the set has no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes of one image.
    pub fn image_bytes(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// Pixels of image `i` (HWC).
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_bytes();
        &self.images[i * n..(i + 1) * n]
    }
}

/// The training batches (concatenated in order) and the test batch of a directory.
#[derive(Debug, Clone)]
pub struct Cifar10 {
    /// `data_batch_1.bin` .. `data_batch_5.bin`.
    pub train: ImageSet,
    /// `test_batch.bin`.
    pub test: ImageSet,
}

/// Loads the five training batches and the test batch from `dir`.
pub fn load(dir: &Path) -> Result<Cifar10, Cifar10Error> {
    let mut train = empty();
    for name in TRAIN_FILES {
        let batch = load_batch(&find(dir, name)?)?;
        train.images.extend_from_slice(&batch.images);
        train.labels.extend_from_slice(&batch.labels);
    }
    let test = load_batch(&find(dir, TEST_FILE)?)?;
    Ok(Cifar10 { train, test })
}

/// Loads one batch file.
pub fn load_batch(path: &Path) -> Result<ImageSet, Cifar10Error> {
    let bytes = std::fs::read(path).map_err(|source| Cifar10Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if bytes.is_empty() || bytes.len() % RECORD_BYTES != 0 {
        return Err(Cifar10Error::BadLength {
            path: path.to_path_buf(),
            len: bytes.len(),
        });
    }
    let mut set = empty();
    set.images.reserve(bytes.len());
    let plane = SIDE * SIDE;
    for (index, record) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
        let label = record[0];
        if label > 9 {
            return Err(Cifar10Error::BadLabel {
                path: path.to_path_buf(),
                index,
                label,
            });
        }
        set.labels.push(label);
        let planes = &record[1..];
        for p in 0..plane {
            set.images
                .extend((0..CHANNELS).map(|c| planes[c * plane + p]));
        }
    }
    Ok(set)
}

/// An empty set of 32x32 colour images.
fn empty() -> ImageSet {
    ImageSet {
        images: Vec::new(),
        labels: Vec::new(),
        height: SIDE,
        width: SIDE,
        channels: CHANNELS,
    }
}

/// `dir/name` if it is a file.
fn find(dir: &Path, name: &'static str) -> Result<PathBuf, Cifar10Error> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Cifar10Error::Missing {
            dir: dir.to_path_buf(),
            name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of class `label` whose red, green and blue planes are `base + pixel % 7`,
    /// `base + 100` and `base + 200` (wrapping).
    fn record(label: u8, base: u8) -> Vec<u8> {
        let mut r = vec![label];
        r.extend((0..1024).map(|p| base.wrapping_add((p % 7) as u8)));
        r.extend(std::iter::repeat_n(base.wrapping_add(100), 1024));
        r.extend(std::iter::repeat_n(base.wrapping_add(200), 1024));
        r
    }

    fn write_dir(dir: &Path) {
        for (i, name) in TRAIN_FILES.iter().enumerate() {
            let mut bytes = record(i as u8, i as u8);
            bytes.extend(record(9, 50));
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        std::fs::write(dir.join(TEST_FILE), record(3, 7)).unwrap();
    }

    #[test]
    fn loads_batches_channels_last() {
        let dir = tempfile::tempdir().unwrap();
        write_dir(dir.path());
        let c = load(dir.path()).unwrap();
        assert_eq!((c.train.len(), c.test.len()), (10, 1));
        assert_eq!(c.train.labels, vec![0, 9, 1, 9, 2, 9, 3, 9, 4, 9]);
        assert_eq!((c.test.height, c.test.width, c.test.channels), (32, 32, 3));
        let img = c.test.image(0);
        assert_eq!(img.len(), 3072);
        // Pixel 0 and pixel 33 (row 1, column 1), each r g b.
        assert_eq!(&img[..3], &[7, 107, 207]);
        assert_eq!(&img[33 * 3..34 * 3], &[7 + 33 % 7, 107, 207]);
        assert_eq!(c.train.image(4)[0..3], [2, 102, 202]);
    }

    #[test]
    fn truncated_bad_label_missing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(TEST_FILE);
        let mut bytes = record(1, 0);
        bytes.extend(record(2, 0));
        bytes.pop();
        std::fs::write(&p, &bytes).unwrap();
        let e = load_batch(&p).unwrap_err();
        assert!(
            matches!(e, Cifar10Error::BadLength { len: 6145, .. }),
            "{e}"
        );
        assert!(e.to_string().contains(&*p.to_string_lossy()), "{e}");

        std::fs::write(&p, []).unwrap();
        assert!(matches!(
            load_batch(&p),
            Err(Cifar10Error::BadLength { len: 0, .. })
        ));

        let mut bytes = record(1, 0);
        bytes.extend(record(10, 0));
        std::fs::write(&p, &bytes).unwrap();
        let e = load_batch(&p).unwrap_err();
        assert!(
            matches!(
                e,
                Cifar10Error::BadLabel {
                    index: 1,
                    label: 10,
                    ..
                }
            ),
            "{e}"
        );

        let e = load(dir.path()).unwrap_err();
        assert!(
            matches!(
                e,
                Cifar10Error::Missing {
                    name: "data_batch_1.bin",
                    ..
                }
            ),
            "{e}"
        );
        assert!(matches!(
            load_batch(&dir.path().join("nope.bin")),
            Err(Cifar10Error::Io { .. })
        ));
    }
}
