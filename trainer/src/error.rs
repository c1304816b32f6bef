//! The trainer's one error type, grouped by topic, each variant with the file or layer it is
//! about.

use std::path::PathBuf;

/// Everything that can go wrong in the trainer and the `ember` command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A dataset file is missing or malformed.
    #[error(transparent)]
    Mnist(#[from] crate::data::mnist::MnistError),
    /// A CIFAR-10 batch file is missing or malformed.
    #[error(transparent)]
    Cifar10(#[from] crate::data::cifar10::Cifar10Error),
    /// An N-MNIST event file or folder is missing or malformed.
    #[error(transparent)]
    Nmnist(#[from] crate::data::nmnist::NmnistError),
    /// A Free Spoken Digit Dataset recording is missing, misnamed or in an unsupported encoding.
    #[error(transparent)]
    Fsdd(#[from] crate::data::fsdd::FsddError),
    /// The SMS Spam Collection file is missing or malformed.
    #[error(transparent)]
    Sms(#[from] crate::data::sms::SmsError),
    /// No `--data` was given and the bundled subset was not found.
    #[error("bundled dataset not found (searched {searched:?}); run from the repository root or pass --data DIR")]
    NoBundledData {
        /// Places searched.
        searched: Vec<PathBuf>,
    },
    /// A recipe could not be parsed or describes an impossible network.
    #[error("recipe {path}: {message}")]
    Recipe {
        /// The recipe file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A checkpoint does not match its recipe or could not be read.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The runtime rejected a model file (or the model being exported).
    #[error("model {path}: {source}")]
    Model {
        /// The model file.
        path: PathBuf,
        /// The runtime's reason.
        source: ember_runtime::Error,
    },
    /// A layer cannot be converted to the integer network.
    #[error("layer {layer}: {message}")]
    Convert {
        /// Layer index in the recipe.
        layer: usize,
        /// What is wrong.
        message: String,
    },
    /// A tensor operation failed.
    #[error("{context}: {source}")]
    Candle {
        /// What was being done.
        context: String,
        /// candle's error.
        source: candle_core::Error,
    },
    /// Hardware in the loop failed (build, QEMU, firmware, comparison).
    #[error("hil: {0}")]
    Hil(#[from] ember_hil::HilError),
    /// The dataset's images do not fit the model.
    #[error("{message}")]
    Mismatch {
        /// What does not fit.
        message: String,
    },
}

/// The trainer's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds context to candle results.
pub(crate) trait CandleContext<T> {
    /// Wraps the error with what was being done.
    fn ctx(self, context: &str) -> Result<T>;
}

impl<T> CandleContext<T> for candle_core::Result<T> {
    fn ctx(self, context: &str) -> Result<T> {
        self.map_err(|source| Error::Candle {
            context: context.to_string(),
            source,
        })
    }
}

/// An [`Error::Io`] for `path`.
pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, then a rename.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Writes `tensors` to `path` as safetensors, atomically (a temporary file, then a rename).
pub(crate) fn save_tensors_atomic(
    tensors: &std::collections::HashMap<String, candle_core::Tensor>,
    path: &std::path::Path,
) -> Result<()> {
    let tmp = tmp_path(path);
    candle_core::safetensors::save(tensors, &tmp).ctx(&format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// The temporary name used while writing `path`.
pub(crate) fn tmp_path(path: &std::path::Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}
