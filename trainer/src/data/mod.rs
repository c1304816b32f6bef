//! Datasets: loaders that take paths, and where the bundled subset lives.
//!
//! One module per format: [`mnist`] (IDX), [`cifar10`] (binary batches), [`nmnist`]
//! (N-MNIST events), [`fsdd`] (spoken digits, WAV to spectrogram or MFCC images) and [`sms`]
//! (SMS Spam Collection TSV). Images are stored channels-last (HWC), like the runtime's
//! activations.

pub mod cifar10;
pub mod fsdd;
pub mod mnist;
pub mod nmnist;
pub mod sms;

use std::path::{Path, PathBuf};

/// Folder of the bundled MNIST subset, relative to the repository root.
pub const BUNDLED_MNIST: &str = "data/mnist-small";

/// Folder of the bundled FSDD subset (one speaker), relative to the repository root.
pub const BUNDLED_FSDD: &str = "data/fsdd-small";

/// The bundled MNIST subset: `data/mnist-small` under the repository this binary was built
/// from, else under the current directory. `Err` lists the places searched.
pub fn bundled_mnist() -> Result<PathBuf, crate::Error> {
    bundled(BUNDLED_MNIST)
}

/// The bundled FSDD subset (130 recordings of one speaker), found like [`bundled_mnist`].
pub fn bundled_fsdd() -> Result<PathBuf, crate::Error> {
    bundled(BUNDLED_FSDD)
}

fn bundled(folder: &str) -> Result<PathBuf, crate::Error> {
    let built = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(folder);
    let here = Path::new(folder).to_path_buf();
    for dir in [&built, &here] {
        if dir.is_dir() {
            return Ok(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone()));
        }
    }
    Err(crate::Error::NoBundledData {
        searched: vec![built, here],
    })
}

/// `dir` if given, else the bundled subset.
pub fn mnist_dir(dir: Option<&Path>) -> Result<PathBuf, crate::Error> {
    match dir {
        Some(d) => Ok(d.to_path_buf()),
        None => bundled_mnist(),
    }
}

/// `$EMBER_DATA/<name>` if it is a folder or file, else `<name>` in `../shared/data` beside
/// the repository; `None` when neither exists (tests that need it then skip and say so).
pub fn shared_data(name: &str) -> Option<PathBuf> {
    let from_env = std::env::var_os("EMBER_DATA").map(|d| Path::new(&d).join(name));
    let beside = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(name);
    from_env.into_iter().chain([beside]).find(|p| p.exists())
}
