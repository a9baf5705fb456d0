//! The recorded venue responses under `node/tests/data/venues/<venue>/`.

use std::path::PathBuf;

/// The bytes of `node/tests/data/venues/<venue>/<name>`.
pub(crate) fn fixture(venue: &str, name: &str) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "data", "venues", venue, name].iter().collect();
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()))
}
