//! The samples a HIL run feeds the firmware: inputs as the runtime takes them (u8,
//! channels-last), with labels when accuracy is wanted.

use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;

use crate::HilError;

/// Inputs of one size, back to back, and optional labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Samples {
    input_len: usize,
    data: Vec<u8>,
    labels: Option<Vec<u8>>,
}

impl Samples {
    /// `data` holds whole inputs of `input_len` bytes; `labels`, if given, one per input.
    pub fn new(
        input_len: usize,
        data: Vec<u8>,
        labels: Option<Vec<u8>>,
    ) -> Result<Samples, HilError> {
        if input_len == 0 || data.len() % input_len != 0 {
            return Err(HilError::Samples(format!(
                "{} bytes are not whole inputs of {input_len} bytes",
                data.len()
            )));
        }
        let n = data.len() / input_len;
        if let Some(l) = &labels {
            if l.len() != n {
                return Err(HilError::Samples(format!(
                    "{} labels for {n} inputs",
                    l.len()
                )));
            }
        }
        Ok(Samples {
            input_len,
            data,
            labels,
        })
    }

    /// The first `n` MNIST test images and labels from `dir`
    /// (`t10k-images-idx3-ubyte.gz`, `t10k-labels-idx1-ubyte.gz`), e.g. `data/mnist-small`.
    pub fn mnist_test(dir: &Path, n: usize) -> Result<Samples, HilError> {
        let images = read_idx(&dir.join("t10k-images-idx3-ubyte.gz"), 0x0803)?;
        let labels = read_idx(&dir.join("t10k-labels-idx1-ubyte.gz"), 0x0801)?;
        let available = images.count.min(labels.count);
        if n > available {
            return Err(HilError::Samples(format!(
                "{n} MNIST test images asked for, {} has {available}",
                dir.display()
            )));
        }
        let len = images.item_len;
        Samples::new(
            len,
            images.data[..n * len].to_vec(),
            Some(labels.data[..n].to_vec()),
        )
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.data.len() / self.input_len
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Bytes of one input.
    pub fn input_len(&self) -> usize {
        self.input_len
    }

    /// Input `i`.
    pub fn input(&self, i: usize) -> &[u8] {
        &self.data[i * self.input_len..(i + 1) * self.input_len]
    }

    /// All inputs back to back: the samples file the firmware reads.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// Labels, if known.
    pub fn labels(&self) -> Option<&[u8]> {
        self.labels.as_deref()
    }

    /// The first `n` samples (all of them if there are fewer).
    pub fn first(&self, n: usize) -> Samples {
        let n = n.min(self.len());
        Samples {
            input_len: self.input_len,
            data: self.data[..n * self.input_len].to_vec(),
            labels: self.labels.as_ref().map(|l| l[..n].to_vec()),
        }
    }
}

struct Idx {
    count: usize,
    item_len: usize,
    data: Vec<u8>,
}

/// Reads a gzipped IDX file of u8 items (big-endian header: magic, dimensions).
fn read_idx(path: &Path, magic: u32) -> Result<Idx, HilError> {
    let bad = |what: &str| HilError::Samples(format!("{}: {what}", path.display()));
    let file = std::fs::File::open(path).map_err(HilError::io(path))?;
    let mut bytes = Vec::new();
    GzDecoder::new(file)
        .read_to_end(&mut bytes)
        .map_err(HilError::io(path))?;
    let word = |i: usize| {
        bytes
            .get(4 * i..4 * i + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    if word(0) != Some(magic as usize) {
        return Err(bad(&format!("not an IDX file with magic {magic:#010x}")));
    }
    let dims = (magic & 0xFF) as usize;
    let shape: Vec<usize> = (1..=dims)
        .map(word)
        .collect::<Option<_>>()
        .ok_or_else(|| bad("truncated header"))?;
    let count = shape[0];
    let item_len: usize = shape[1..].iter().product();
    let data = bytes.split_off(4 * (dims + 1));
    if data.len() != count * item_len {
        return Err(bad("size does not match its header"));
    }
    Ok(Idx {
        count,
        item_len,
        data,
    })
}
