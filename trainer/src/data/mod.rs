//! Datasets: loaders that take paths, and where the bundled subset lives.

pub mod mnist;

use std::path::{Path, PathBuf};

/// Folder of the bundled MNIST subset, relative to the repository root.
pub const BUNDLED_MNIST: &str = "data/mnist-small";

/// The bundled MNIST subset: `data/mnist-small` under the repository this binary was built
/// from, else under the current directory. `Err` lists the places searched.
pub fn bundled_mnist() -> Result<PathBuf, crate::Error> {
    let built = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(BUNDLED_MNIST);
    let here = Path::new(BUNDLED_MNIST).to_path_buf();
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
