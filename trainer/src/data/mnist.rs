//! MNIST in the original IDX format, raw or gzip-compressed.
//!
//! An IDX file is a big-endian header (`0x0000 08 nd`, then `nd` u32 dimensions) followed by
//! the u8 values. Images are `0x00000803` (count, rows, cols), labels `0x00000801` (count).
//! Files may be gzip-compressed (detected by the gzip magic, whatever the name).
//!
//! ```no_run
//! let mnist = ember_trainer::data::mnist::Mnist::load(std::path::Path::new("data/mnist-small"))?;
//! assert_eq!(mnist.train.image(0).len(), 28 * 28);
//! # Ok::<(), ember_trainer::data::mnist::MnistError>(())
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};

/// Magic number of an IDX file of u8 images (3 dimensions).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of u8 labels (1 dimension).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// What can be wrong with an MNIST directory or one of its files.
#[derive(Debug, thiserror::Error)]
pub enum MnistError {
    /// The file could not be read or decompressed.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not start with the expected IDX magic number.
    #[error("{path}: bad magic 0x{found:08x}, expected 0x{expected:08x} (not an IDX {what} file)")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// Magic found.
        found: u32,
        /// Magic expected.
        expected: u32,
        /// "images" or "labels".
        what: &'static str,
    },
    /// The file ends before the header or the data the header announces.
    #[error("{path}: truncated: the header announces {expected} bytes, the file has {found}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes expected (header and data).
        expected: usize,
        /// Bytes present.
        found: usize,
    },
    /// Bytes follow the data the header announces.
    #[error("{path}: {extra} unexpected bytes after the data the header announces")]
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// How many.
        extra: usize,
    },
    /// The image and label files of one split disagree on the number of samples.
    #[error("{images} has {n_images} images but {labels} has {n_labels} labels")]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// Its sample count.
        n_images: usize,
        /// The label file.
        labels: PathBuf,
        /// Its sample count.
        n_labels: usize,
    },
    /// A label is not a digit.
    #[error("{path}: label {label} of sample {index} is not a digit 0..=9")]
    BadLabel {
        /// The label file.
        path: PathBuf,
        /// Sample index.
        index: usize,
        /// The value found.
        label: u8,
    },
    /// An expected file is in neither raw nor gzip form in the directory.
    #[error(
        "{dir}: no {name} or {name}.gz; pass --data DIR with the four MNIST IDX files \
         (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-...)"
    )]
    Missing {
        /// The directory searched.
        dir: PathBuf,
        /// The file name looked for.
        name: &'static str,
    },
}

/// One split (train or test): `len` images of `rows x cols` u8 pixels and their labels.
#[derive(Debug, Clone)]
pub struct Split {
    /// Pixels, image after image, row-major (channels-last with one channel).
    pub images: Vec<u8>,
    /// One digit per image.
    pub labels: Vec<u8>,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
}

impl Split {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the split has no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.rows * self.cols;
        &self.images[i * n..(i + 1) * n]
    }

    /// The first `n` samples (all of them if `n` is larger).
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.len());
        self.labels.truncate(n);
        self.images.truncate(n * self.rows * self.cols);
    }

    /// Drops the first `n` samples (all of them if `n` is larger).
    pub fn skip(&mut self, n: usize) {
        let n = n.min(self.len());
        self.labels.drain(..n);
        self.images.drain(..n * self.rows * self.cols);
    }
}

/// The four MNIST files of a directory.
#[derive(Debug, Clone)]
pub struct Mnist {
    /// The training split.
    pub train: Split,
    /// The test split.
    pub test: Split,
}

impl Mnist {
    /// Loads `train-*` and `t10k-*` images and labels from `dir`, each raw or `.gz`.
    pub fn load(dir: &Path) -> Result<Mnist, MnistError> {
        Ok(Mnist {
            train: load_split(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte")?,
            test: load_split(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")?,
        })
    }
}

/// Loads one split from an image file and a label file of `dir`.
pub fn load_split(
    dir: &Path,
    images: &'static str,
    labels: &'static str,
) -> Result<Split, MnistError> {
    let ipath = find(dir, images)?;
    let lpath = find(dir, labels)?;
    let (idims, pixels) = read_idx(&ipath, IMAGES_MAGIC, "images")?;
    let (ldims, labels) = read_idx(&lpath, LABELS_MAGIC, "labels")?;
    if idims[0] != ldims[0] {
        return Err(MnistError::CountMismatch {
            images: ipath,
            n_images: idims[0],
            labels: lpath,
            n_labels: ldims[0],
        });
    }
    if let Some(index) = labels.iter().position(|&l| l > 9) {
        return Err(MnistError::BadLabel {
            path: lpath,
            index,
            label: labels[index],
        });
    }
    Ok(Split {
        images: pixels,
        labels,
        rows: idims[1],
        cols: idims[2],
    })
}

/// `dir/name` if it exists, else `dir/name.gz`.
fn find(dir: &Path, name: &'static str) -> Result<PathBuf, MnistError> {
    let raw = dir.join(name);
    if raw.is_file() {
        return Ok(raw);
    }
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(MnistError::Missing {
        dir: dir.to_path_buf(),
        name,
    })
}

/// Reads an IDX file of u8 values with the given magic; returns its dimensions and data.
pub fn read_idx(
    path: &Path,
    magic: u32,
    what: &'static str,
) -> Result<(Vec<usize>, Vec<u8>), MnistError> {
    let io = |source| MnistError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = std::fs::read(path).map_err(io)?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .map_err(io)?;
        bytes = out;
    }
    let truncated = |expected| MnistError::Truncated {
        path: path.to_path_buf(),
        expected,
        found: bytes.len(),
    };
    if bytes.len() < 4 {
        return Err(truncated(4));
    }
    let found = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if found != magic {
        return Err(MnistError::BadMagic {
            path: path.to_path_buf(),
            found,
            expected: magic,
            what,
        });
    }
    let nd = (magic & 0xFF) as usize;
    let header = 4 + 4 * nd;
    if bytes.len() < header {
        return Err(truncated(header));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .and_then(|n| n.checked_add(header));
    let Some(expected) = expected else {
        return Err(truncated(usize::MAX));
    };
    if bytes.len() < expected {
        return Err(truncated(expected));
    }
    if bytes.len() > expected {
        return Err(MnistError::TrailingBytes {
            path: path.to_path_buf(),
            extra: bytes.len() - expected,
        });
    }
    bytes.drain(..header);
    Ok((dims, bytes))
}

/// Writes `split` as gzip-compressed IDX files `dir/<prefix>-images-idx3-ubyte.gz` and
/// `dir/<prefix>-labels-idx1-ubyte.gz` (each atomically), which [`load_split`] and
/// `ember eval` / `ember hil --data dir` read back (with prefix `t10k`).
pub fn write_split(dir: &Path, prefix: &str, split: &Split) -> crate::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir).map_err(crate::error::io(dir))?;
    let n = split.len() as u32;
    let header = |magic: u32, dims: &[u32]| -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        dims.iter()
            .for_each(|d| v.extend_from_slice(&d.to_be_bytes()));
        v
    };
    let images = header(IMAGES_MAGIC, &[n, split.rows as u32, split.cols as u32]);
    let labels = header(LABELS_MAGIC, &[n]);
    for (name, head, body) in [
        ("images-idx3-ubyte.gz", images, &split.images),
        ("labels-idx1-ubyte.gz", labels, &split.labels),
    ] {
        let path = dir.join(format!("{prefix}-{name}"));
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let bytes = e
            .write_all(&head)
            .and_then(|()| e.write_all(body))
            .and_then(|()| e.finish());
        crate::error::write_atomic(&path, &bytes.map_err(crate::error::io(&path))?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// Writes a 3-sample split of 2x2 images; `gz` compresses the image file.
    fn write_split(dir: &Path, prefix: &str, n_labels: u32, gz: bool) {
        let images = idx(
            IMAGES_MAGIC,
            &[3, 2, 2],
            &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
        );
        let labels = idx(LABELS_MAGIC, &[n_labels], &vec![7; n_labels as usize]);
        if gz {
            std::fs::write(
                dir.join(format!("{prefix}-images-idx3-ubyte.gz")),
                gzip(&images),
            )
            .unwrap();
        } else {
            std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), images).unwrap();
        }
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), labels).unwrap();
    }

    #[test]
    fn loads_raw_and_gzip() {
        let dir = tempfile::tempdir().unwrap();
        write_split(dir.path(), "train", 3, true);
        write_split(dir.path(), "t10k", 3, false);
        let m = Mnist::load(dir.path()).unwrap();
        assert_eq!((m.train.len(), m.train.rows, m.train.cols), (3, 2, 2));
        assert_eq!(m.train.image(1), &[4, 5, 6, 7]);
        assert_eq!(m.test.image(2), &[8, 9, 10, 11]);
        assert_eq!(m.test.labels, vec![7, 7, 7]);
    }

    #[test]
    fn count_mismatch_names_both_files() {
        let dir = tempfile::tempdir().unwrap();
        write_split(dir.path(), "train", 2, false);
        write_split(dir.path(), "t10k", 3, false);
        let e = Mnist::load(dir.path()).unwrap_err();
        assert!(
            matches!(
                e,
                MnistError::CountMismatch {
                    n_images: 3,
                    n_labels: 2,
                    ..
                }
            ),
            "{e}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("train-images-idx3-ubyte") && msg.contains("train-labels-idx1-ubyte"),
            "{msg}"
        );
    }

    #[test]
    fn bad_magic_truncated_trailing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, idx(LABELS_MAGIC, &[2], &[1, 2])).unwrap();
        let e = read_idx(&p, IMAGES_MAGIC, "images").unwrap_err();
        assert!(
            matches!(
                e,
                MnistError::BadMagic {
                    found: LABELS_MAGIC,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains(&*p.to_string_lossy()));

        std::fs::write(&p, idx(IMAGES_MAGIC, &[2, 2, 2], &[0; 7])).unwrap();
        let e = read_idx(&p, IMAGES_MAGIC, "images").unwrap_err();
        assert!(
            matches!(
                e,
                MnistError::Truncated {
                    expected: 24,
                    found: 23,
                    ..
                }
            ),
            "{e}"
        );

        std::fs::write(&p, gzip(&idx(IMAGES_MAGIC, &[2, 2, 2], &[0; 5]))).unwrap();
        let e = read_idx(&p, IMAGES_MAGIC, "images").unwrap_err();
        assert!(
            matches!(
                e,
                MnistError::Truncated {
                    expected: 24,
                    found: 21,
                    ..
                }
            ),
            "{e}"
        );

        std::fs::write(&p, &IMAGES_MAGIC.to_be_bytes()[..3]).unwrap();
        assert!(matches!(
            read_idx(&p, IMAGES_MAGIC, "images"),
            Err(MnistError::Truncated { expected: 4, .. })
        ));

        std::fs::write(&p, idx(LABELS_MAGIC, &[2], &[1, 2, 3])).unwrap();
        let e = read_idx(&p, LABELS_MAGIC, "labels").unwrap_err();
        assert!(
            matches!(e, MnistError::TrailingBytes { extra: 1, .. }),
            "{e}"
        );

        std::fs::write(&p, [0x1f, 0x8b, 0, 1, 2]).unwrap();
        assert!(matches!(
            read_idx(&p, LABELS_MAGIC, "labels"),
            Err(MnistError::Io { .. })
        ));
    }

    #[test]
    fn missing_file_and_bad_label() {
        let dir = tempfile::tempdir().unwrap();
        let e = Mnist::load(dir.path()).unwrap_err();
        assert!(
            matches!(
                e,
                MnistError::Missing {
                    name: "train-images-idx3-ubyte",
                    ..
                }
            ),
            "{e}"
        );
        write_split(dir.path(), "train", 3, false);
        std::fs::write(
            dir.path().join("train-labels-idx1-ubyte"),
            idx(LABELS_MAGIC, &[3], &[1, 12, 3]),
        )
        .unwrap();
        let e = load_split(
            dir.path(),
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                MnistError::BadLabel {
                    index: 1,
                    label: 12,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn bundled_subset_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist-small");
        let m = Mnist::load(&dir).unwrap();
        assert_eq!(
            (m.train.len(), m.test.len(), m.train.rows, m.train.cols),
            (2000, 500, 28, 28)
        );
    }
}
