//! Where cargo put what the end-to-end tests load: `CARGO_TARGET_DIR` when the build was
//! given one (a relative one is read from the repository, where scripts/test runs), else
//! the repository's `target/`.

use std::path::{Path, PathBuf};

/// A path inside the target directory of the repository at `repo`.
pub fn built(repo: &Path, rel: &str) -> PathBuf {
    let dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo.join("target"), |d| repo.join(d));
    dir.join(rel)
}
