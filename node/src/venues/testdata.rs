//! The recorded venue responses under `node/tests/data/venues/<venue>/`.

use std::path::PathBuf;

use fixd_proto::types::venue::Venue;

use super::VenueError;

/// The bytes of `node/tests/data/venues/<venue>/<name>`.
pub(crate) fn fixture(venue: &str, name: &str) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "data", "venues", venue, name].iter().collect();
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()))
}

/// The detail of a `Malformed` error from `venue`; panics on any other error.
pub(crate) fn malformed_detail(venue: Venue, err: VenueError) -> String {
    match err {
        VenueError::Malformed { venue: v, detail } if v == venue => detail,
        other => panic!("expected Malformed from {venue}, got {other:?}"),
    }
}
